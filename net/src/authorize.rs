//! Authorization on the request path: the authorizer `authorizer.class.name` turns on, the wire codes of
//! Kafka's ACL enums and SCRAM mechanisms, and the `authorized_operations` bit sets.
//!
//! Every handler asks [`Shard::authorized`] before it touches a resource, with the operation Kafka's
//! `KafkaApis` asks for, and answers what Kafka answers when refused (TOPIC_AUTHORIZATION_FAILED per topic,
//! GROUP_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED; topics a client may not describe are left out of
//! lists). The decision reads the ACLs of the shard's metadata image, so a change committed by the controller
//! holds on a node once it has applied it. Without an authorizer every request is allowed and the ACL APIs
//! answer SECURITY_DISABLED, as Kafka's do.
//!
//! The principal is the one a SASL listener authenticated (`User:NAME`, `crate::sasl`); on a PLAINTEXT listener
//! it is `User:ANONYMOUS`, as in Kafka, and ACLs tell those clients apart by host only.

use sluice_replication::acl::{
    AclFilter, AclOperation, PatternFilter, PatternType, Permission, Requester, ResourceType, ANONYMOUS, CLUSTER_NAME,
};

use sluice_replication::scram::ScramMechanism;

use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// Who sends a request: its connection's principal (`User:ANONYMOUS` unless SASL authenticated another) and host
/// (kept as Kafka prints it, `/ADDRESS`; ACLs name the bare address).
fn requester(header: &RequestHeader) -> Requester<'_> {
    let host = header.client_host.strip_prefix('/').unwrap_or(&header.client_host);
    Requester { principal: header.principal.as_deref().unwrap_or(ANONYMOUS), host }
}

impl Shard {
    /// May the request's principal do `operation` on the resource? Always yes without an authorizer.
    pub fn authorized(&self, header: &RequestHeader, operation: AclOperation, kind: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.authorizer else { return true };
        authorizer.authorize(&self.image_ref().acls, requester(header), operation, kind, name)
    }

    /// May the request's principal do `operation` on some resource of the type? (Kafka's
    /// `authorizeByResourceType`.)
    pub fn authorized_on_any(&self, header: &RequestHeader, operation: AclOperation, kind: ResourceType) -> bool {
        let Some(authorizer) = &self.authorizer else { return true };
        authorizer.authorize_any(&self.image_ref().acls, requester(header), operation, kind)
    }

    /// Why an ACL API refuses a request before reading it: no authorizer (SECURITY_DISABLED, as Kafka answers),
    /// or the principal may not do `operation` (DESCRIBE to list, ALTER to change) on the cluster.
    pub fn acl_api_refusal(&self, header: &RequestHeader, operation: AclOperation) -> Option<(ResponseError, String)> {
        if self.authorizer.is_none() {
            return Some((
                ResponseError::SecurityDisabled,
                "no authorizer is configured (authorizer.class.name)".into(),
            ));
        }
        (!self.authorized_on_cluster(header, operation)).then(|| {
            (ResponseError::ClusterAuthorizationFailed, format!("{operation:?} on the cluster is not allowed"))
        })
    }

    /// May the request's principal do `operation` on the cluster?
    pub fn authorized_on_cluster(&self, header: &RequestHeader, operation: AclOperation) -> bool {
        self.authorized(header, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// The `authorized_operations` bit set of a resource: bit N for the operation with code N that the
    /// principal may do on it.
    pub fn authorized_operations(&self, header: &RequestHeader, kind: ResourceType, name: &str) -> i32 {
        let allowed = match &self.authorizer {
            None => AclOperation::of(kind).to_vec(),
            Some(authorizer) => authorizer.authorized_operations(&self.image_ref().acls, requester(header), kind, name),
        };
        allowed.into_iter().fold(0, |bits, op| bits | (1 << operation_code(op)))
    }
}

pub fn resource_type_code(kind: ResourceType) -> i8 {
    match kind {
        ResourceType::Topic => 2,
        ResourceType::Group => 3,
        ResourceType::Cluster => 4,
        ResourceType::TransactionalId => 5,
        ResourceType::DelegationToken => 6,
        ResourceType::User => 7,
    }
}

/// A resource type code: `Ok(None)` for ANY (1), `Err` for UNKNOWN and codes Kafka does not define.
pub fn resource_type(code: i8) -> Result<Option<ResourceType>, String> {
    Ok(Some(match code {
        1 => return Ok(None),
        2 => ResourceType::Topic,
        3 => ResourceType::Group,
        4 => ResourceType::Cluster,
        5 => ResourceType::TransactionalId,
        6 => ResourceType::DelegationToken,
        7 => ResourceType::User,
        other => return Err(format!("unknown resource type {other}")),
    }))
}

pub fn pattern_type_code(pattern: PatternType) -> i8 {
    match pattern {
        PatternType::Literal => 3,
        PatternType::Prefixed => 4,
    }
}

pub fn pattern_filter(code: i8) -> Result<PatternFilter, String> {
    match code {
        1 => Ok(PatternFilter::Any),
        2 => Ok(PatternFilter::Match),
        3 => Ok(PatternFilter::Exactly(PatternType::Literal)),
        4 => Ok(PatternFilter::Exactly(PatternType::Prefixed)),
        other => Err(format!("unknown pattern type {other}")),
    }
}

pub fn operation_code(operation: AclOperation) -> i8 {
    match operation {
        AclOperation::All => 2,
        AclOperation::Read => 3,
        AclOperation::Write => 4,
        AclOperation::Create => 5,
        AclOperation::Delete => 6,
        AclOperation::Alter => 7,
        AclOperation::Describe => 8,
        AclOperation::ClusterAction => 9,
        AclOperation::DescribeConfigs => 10,
        AclOperation::AlterConfigs => 11,
        AclOperation::IdempotentWrite => 12,
        AclOperation::CreateTokens => 13,
        AclOperation::DescribeTokens => 14,
    }
}

/// An operation code: `Ok(None)` for ANY (1).
pub fn operation(code: i8) -> Result<Option<AclOperation>, String> {
    Ok(Some(match code {
        1 => return Ok(None),
        2 => AclOperation::All,
        3 => AclOperation::Read,
        4 => AclOperation::Write,
        5 => AclOperation::Create,
        6 => AclOperation::Delete,
        7 => AclOperation::Alter,
        8 => AclOperation::Describe,
        9 => AclOperation::ClusterAction,
        10 => AclOperation::DescribeConfigs,
        11 => AclOperation::AlterConfigs,
        12 => AclOperation::IdempotentWrite,
        13 => AclOperation::CreateTokens,
        14 => AclOperation::DescribeTokens,
        other => return Err(format!("unknown operation {other}")),
    }))
}

pub fn permission_code(permission: Permission) -> i8 {
    match permission {
        Permission::Deny => 2,
        Permission::Allow => 3,
    }
}

/// A permission code: `Ok(None)` for ANY (1).
pub fn permission(code: i8) -> Result<Option<Permission>, String> {
    match code {
        1 => Ok(None),
        2 => Ok(Some(Permission::Deny)),
        3 => Ok(Some(Permission::Allow)),
        other => Err(format!("unknown permission type {other}")),
    }
}

/// A DescribeAcls or DeleteAcls filter from its wire fields (the two requests carry the same seven).
pub fn acl_filter(
    resource_type_code: i8,
    name: Option<&str>,
    pattern_code: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation_code: i8,
    permission_code: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: resource_type(resource_type_code)?,
        name: name.map(String::from),
        pattern: pattern_filter(pattern_code)?,
        principal: principal.map(String::from),
        host: host.map(String::from),
        operation: operation(operation_code)?,
        permission: permission(permission_code)?,
    })
}

/// A SCRAM mechanism code (AlterUserScramCredentials, DescribeUserScramCredentials): 1 SCRAM-SHA-256,
/// 2 SCRAM-SHA-512; anything else is unknown.
pub fn scram_mechanism(code: i8) -> Option<ScramMechanism> {
    match code {
        1 => Some(ScramMechanism::Sha256),
        2 => Some(ScramMechanism::Sha512),
        _ => None,
    }
}

pub fn scram_mechanism_code(mechanism: ScramMechanism) -> i8 {
    match mechanism {
        ScramMechanism::Sha256 => 1,
        ScramMechanism::Sha512 => 2,
    }
}
