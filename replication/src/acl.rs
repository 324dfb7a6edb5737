//! Access control lists and the decision that reads them: Kafka's ACL model and its `StandardAuthorizer`
//! rules, without the wire codes (`net` maps those).
//!
//! An ACL binds a resource pattern (a type, a name, and whether the name is literal or a prefix) to an access
//! entry (a principal, a host, an operation, allow or deny). The controller commits them to the metadata log
//! ([`crate::metadata::MetadataRecord::CreateAcls`]), so every node holds the same set in its image and decides
//! locally, as Kafka's brokers do.
//!
//! The decision ([`Authorizer::authorize`]), in Kafka's order:
//! 1. a super user (`super.users`) may do anything;
//! 2. a matching DENY refuses, whatever else matches;
//! 3. a matching ALLOW permits; ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE, and ALLOW of
//!    ALTER_CONFIGS implies DESCRIBE_CONFIGS;
//! 4. with no ACL at all on the resource, `allow.everyone.if.no.acl.found` decides (false by default);
//! 5. otherwise refused.
//!
//! An entry matches a request when its principal is the request's or `User:*`, its host is the client's
//! address or `*`, its operation is the one asked or ALL, and its pattern covers the resource: a LITERAL name
//! equal to the resource's or `*`, or a PREFIXED name the resource's name starts with.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::config::{broker, EffectiveConfig, StaticConfig};

/// The name Kafka gives the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The wildcard resource name and host.
pub const WILDCARD: &str = "*";

/// The principal an ACL names to mean every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The principal of a connection that did not authenticate (every PLAINTEXT connection).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl AclOperation {
    /// The operations a resource type has, as Kafka lists them for its `authorized_operations` fields.
    pub fn of(resource_type: ResourceType) -> &'static [AclOperation] {
        use AclOperation::*;
        match resource_type {
            ResourceType::Topic => &[Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Delete, Describe],
            ResourceType::Cluster => {
                &[Create, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite]
            }
            ResourceType::TransactionalId => &[Write, Describe],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }

    /// Whether an ALLOW of `self` also allows `wanted`.
    fn allows(self, wanted: AclOperation) -> bool {
        use AclOperation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

/// One ACL. The field order is the set's order: by resource first, so one resource's entries sit together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// How a filter reads a binding's pattern (DescribeAcls and DeleteAcls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Any pattern type; the name, if given, must be equal.
    Any,
    /// The patterns that cover the name: LITERAL equal or `*`, and PREFIXED prefixes of it.
    Match,
    Exactly(PatternType),
}

/// Which ACLs a DescribeAcls or DeleteAcls filter selects; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let name_ok = match (&self.pattern, &self.name) {
            (PatternFilter::Match, Some(name)) => pattern_covers(acl, name),
            (PatternFilter::Match, None) | (PatternFilter::Any, None) => true,
            (PatternFilter::Any, Some(name)) => &acl.name == name,
            (PatternFilter::Exactly(pattern), name) => {
                acl.pattern == *pattern && name.as_ref().is_none_or(|n| n == &acl.name)
            }
        };
        name_ok
            && self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self.principal.as_ref().is_none_or(|p| p == &acl.principal)
            && self.host.as_ref().is_none_or(|h| h == &acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }
}

/// Whether a binding's pattern covers a resource name.
fn pattern_covers(acl: &AclBinding, name: &str) -> bool {
    match acl.pattern {
        PatternType::Literal => acl.name == name || acl.name == WILDCARD,
        PatternType::Prefixed => name.starts_with(acl.name.as_str()),
    }
}

/// The ACLs whose pattern covers a resource, found without scanning the others (Kafka's `StandardAuthorizer`
/// walks its sorted set the same way). The set is ordered by resource type, then name, and every name that can
/// cover `name` is `name` itself or a prefix of it, so sorts at or before it: the walk goes down from `name`.
/// An entry whose name is a prefix is a candidate. One that is not shares only its first `c` characters with
/// `name`, and nothing between `name[..c]` and it can be a prefix of `name`, so the walk jumps to `name[..c]`.
/// The LITERAL wildcard `*` is looked up on its own. A check costs a few range lookups, whatever the number of
/// ACLs.
fn covering<'a>(
    acls: &'a BTreeSet<AclBinding>,
    resource_type: ResourceType,
    name: &'a str,
) -> impl Iterator<Item = &'a AclBinding> + 'a {
    let mut walk = named_at_most(acls, resource_type, name);
    let walked = std::iter::from_fn(move || loop {
        let acl = walk.next()?;
        if acl.resource_type != resource_type {
            return None;
        }
        if name.starts_with(acl.name.as_str()) {
            return Some(acl);
        }
        let common = name
            .char_indices()
            .zip(acl.name.chars())
            .find(|((_, ours), theirs)| ours != theirs)
            // Always found: a name below `name` in the range that is not a prefix of it differs from it within
            // both lengths. (0, were it not, would end the walk rather than loop.)
            .map_or(0, |((at, _), _)| at);
        walk = named_at_most(acls, resource_type, &name[..common]);
    });
    let wildcard = (!name.starts_with(WILDCARD)).then(|| {
        named_at_most(acls, resource_type, WILDCARD)
            .take_while(move |acl| acl.resource_type == resource_type && acl.name == WILDCARD)
    });
    walked.chain(wildcard.into_iter().flatten()).filter(move |acl| pattern_covers(acl, name))
}

/// The ACLs of a resource type named `name` or less, greatest first. `name` followed by NUL is the least name
/// greater than `name`, and its least binding bounds the range from above.
fn named_at_most<'a>(
    acls: &'a BTreeSet<AclBinding>,
    resource_type: ResourceType,
    name: &str,
) -> std::iter::Rev<std::collections::btree_set::Range<'a, AclBinding>> {
    acls.range((Bound::Unbounded, Bound::Excluded(least_binding(resource_type, format!("{name}\0"))))).rev()
}

/// The least binding of a resource type and name in the set's order, a bound for ranges of the set.
fn least_binding(resource_type: ResourceType, name: String) -> AclBinding {
    AclBinding {
        resource_type,
        name,
        pattern: PatternType::Literal,
        principal: String::new(),
        host: String::new(),
        operation: AclOperation::All,
        permission: Permission::Deny,
    }
}

/// Why an ACL cannot be created (Kafka answers INVALID_REQUEST for each).
pub fn validate(acl: &AclBinding) -> Result<(), String> {
    if acl.name.is_empty() {
        return Err("the resource name must not be empty".into());
    }
    if acl.resource_type == ResourceType::Cluster && acl.name != CLUSTER_NAME {
        return Err(format!("the only valid name for the CLUSTER resource is {CLUSTER_NAME}"));
    }
    if acl.pattern == PatternType::Prefixed && acl.name == WILDCARD {
        return Err("a PREFIXED pattern cannot be the wildcard '*': use LITERAL '*'".into());
    }
    match acl.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => return Err(format!("invalid principal {:?}: expected TYPE:NAME, such as User:alice", acl.principal)),
    }
    if acl.host.is_empty() {
        return Err("the host must not be empty: use '*' for any host".into());
    }
    if acl.operation != AclOperation::All && !AclOperation::of(acl.resource_type).contains(&acl.operation) {
        return Err(format!("{:?} is not an operation of a {:?} resource", acl.operation, acl.resource_type));
    }
    Ok(())
}

/// The authorizer's settings: `super.users` and `allow.everyone.if.no.acl.found`. Present only when
/// `authorizer.class.name` names an authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    pub super_users: BTreeSet<String>,
    pub allow_if_no_acl: bool,
}

/// Who asks: the principal (`User:NAME`) and the client's address, without the leading `/` Java prints.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

impl Requester<'_> {
    /// Whether an ACL's entry names this requester: its principal or `User:*`, and its host or `*`.
    fn named_by(&self, acl: &AclBinding) -> bool {
        (acl.principal == self.principal || acl.principal == WILDCARD_PRINCIPAL)
            && (acl.host == self.host || acl.host == WILDCARD)
    }
}

impl Authorizer {
    /// The authorizer `authorizer.class.name` asks for, if any, with `super.users` and
    /// `allow.everyone.if.no.acl.found` from the same configuration.
    pub fn configured(config: &StaticConfig) -> Option<Authorizer> {
        let dynamic = Default::default();
        let config = EffectiveConfig::new(config, &dynamic);
        if config.get(broker::AUTHORIZER_CLASS_NAME).trim().is_empty() {
            return None;
        }
        Some(Authorizer::new(&config.get(broker::SUPER_USERS), config.get(broker::ALLOW_EVERYONE_IF_NO_ACL_FOUND)))
    }

    /// Parses `super.users`: principals separated by `;`.
    pub fn new(super_users: &str, allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            super_users: super_users.split(';').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect(),
            allow_if_no_acl,
        }
    }

    /// May `who` do `operation` on the resource, given the cluster's ACLs?
    pub fn authorize(
        &self,
        acls: &BTreeSet<AclBinding>,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.super_users.contains(who.principal) || self.decide(covering(acls, resource_type, name), who, operation)
    }

    /// The operations of the resource's type (`AclOperation::of`) that `who` may do on it: Kafka's
    /// `authorized_operations`. The ACLs covering the resource are found once for all of them.
    pub fn authorized_operations(
        &self,
        acls: &BTreeSet<AclBinding>,
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
    ) -> Vec<AclOperation> {
        let operations = AclOperation::of(resource_type);
        if self.super_users.contains(who.principal) {
            return operations.to_vec();
        }
        let covering: Vec<&AclBinding> = covering(acls, resource_type, name).collect();
        operations.iter().copied().filter(|op| self.decide(covering.iter().copied(), who, *op)).collect()
    }

    /// The decision from the ACLs that cover a resource: a DENY of `who` wins, else an ALLOW of `who` permits,
    /// else, when no ACL covers the resource at all, `allow.everyone.if.no.acl.found` decides.
    fn decide<'a>(
        &self,
        covering: impl IntoIterator<Item = &'a AclBinding>,
        who: Requester<'_>,
        operation: AclOperation,
    ) -> bool {
        let mut any_on_resource = false;
        let mut allowed = false;
        for acl in covering {
            any_on_resource = true;
            if !who.named_by(acl) {
                continue;
            }
            match acl.permission {
                Permission::Deny if acl.operation == AclOperation::All || acl.operation == operation => return false,
                Permission::Allow if acl.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any_on_resource && self.allow_if_no_acl)
    }

    /// Kafka's `authorizeByResourceType`: may `who` do `operation` on at least one resource of the type? First,
    /// as in Kafka, whatever a resource named `hardcode` would be allowed (super users, and
    /// `allow.everyone.if.no.acl.found` when no ACL covers that name). Then an ALLOW of theirs counts unless a
    /// DENY of theirs covers every name it does (the same literal name, a prefix of it, or `*`). InitProducerId
    /// without a transactional id asks this for WRITE on topics.
    pub fn authorize_any(
        &self,
        acls: &BTreeSet<AclBinding>,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.authorize(acls, who, operation, resource_type, "hardcode") {
            return true;
        }
        let theirs: Vec<&AclBinding> = acls
            .range(least_binding(resource_type, String::new())..)
            .take_while(|a| a.resource_type == resource_type)
            .filter(|a| who.named_by(a))
            .collect();
        let denies: Vec<&AclBinding> = theirs
            .iter()
            .copied()
            .filter(|a| {
                a.permission == Permission::Deny && (a.operation == AclOperation::All || a.operation == operation)
            })
            .collect();
        let denied = |allow: &AclBinding| {
            denies.iter().any(|deny| match deny.pattern {
                PatternType::Literal => {
                    deny.name == WILDCARD || (allow.pattern == PatternType::Literal && deny.name == allow.name)
                }
                PatternType::Prefixed => allow.name.starts_with(deny.name.as_str()),
            })
        };
        theirs.iter().any(|a| a.permission == Permission::Allow && a.operation.allows(operation) && !denied(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(name: &str, pattern: PatternType, principal: &str, op: AclOperation, permission: Permission) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission,
        }
    }

    const ALICE: Requester<'static> = Requester { principal: "User:alice", host: "127.0.0.1" };

    #[test]
    fn deny_wins_allow_implies_describe_and_no_acl_follows_the_setting() {
        use AclOperation::*;
        let strict = Authorizer::new("", false);
        let open = Authorizer::new("", true);
        let mut acls = BTreeSet::new();
        assert!(!strict.authorize(&acls, ALICE, Read, ResourceType::Topic, "t"));
        assert!(open.authorize(&acls, ALICE, Read, ResourceType::Topic, "t"));

        acls.insert(acl("t", PatternType::Literal, "User:alice", Read, Permission::Allow));
        assert!(strict.authorize(&acls, ALICE, Read, ResourceType::Topic, "t"));
        assert!(strict.authorize(&acls, ALICE, Describe, ResourceType::Topic, "t"), "READ implies DESCRIBE");
        assert!(!strict.authorize(&acls, ALICE, Write, ResourceType::Topic, "t"));
        // An ACL on the resource for someone else: the no-ACL rule no longer lets anyone in.
        let bob = Requester { principal: "User:bob", host: "127.0.0.1" };
        assert!(!open.authorize(&acls, bob, Read, ResourceType::Topic, "t"));
        assert!(open.authorize(&acls, bob, Read, ResourceType::Topic, "other"));

        acls.insert(acl("t", PatternType::Prefixed, "User:*", All, Permission::Deny));
        assert!(!strict.authorize(&acls, ALICE, Read, ResourceType::Topic, "t"), "DENY wins");
        assert!(Authorizer::new("User:alice;User:admin", false).authorize(
            &acls,
            ALICE,
            Read,
            ResourceType::Topic,
            "t"
        ));
    }

    #[test]
    fn any_resource_of_a_type_counts_unless_a_deny_covers_it() {
        use AclOperation::*;
        let authorizer = Authorizer::new("", false);
        let mut acls = BTreeSet::new();
        assert!(!authorizer.authorize_any(&acls, ALICE, Write, ResourceType::Topic));
        assert!(Authorizer::new("", true).authorize_any(&acls, ALICE, Write, ResourceType::Topic));
        // As in Kafka: an ACL for someone else on one topic leaves the others to allow.everyone.if.no.acl.found.
        let bobs = BTreeSet::from([acl("orders", PatternType::Literal, "User:bob", Write, Permission::Allow)]);
        assert!(Authorizer::new("", true).authorize_any(&bobs, ALICE, Write, ResourceType::Topic));
        assert!(!authorizer.authorize_any(&bobs, ALICE, Write, ResourceType::Topic));
        acls.insert(acl("orders", PatternType::Literal, "User:alice", Write, Permission::Allow));
        assert!(authorizer.authorize_any(&acls, ALICE, Write, ResourceType::Topic));
        assert!(!authorizer.authorize_any(&acls, ALICE, Write, ResourceType::Group));
        acls.insert(acl("ord", PatternType::Prefixed, "User:alice", Write, Permission::Deny));
        assert!(!authorizer.authorize_any(&acls, ALICE, Write, ResourceType::Topic));
    }

    #[test]
    fn hosts_prefixes_and_wildcards_match_as_kafka_matches_them() {
        use AclOperation::*;
        let authorizer = Authorizer::new("", false);
        let mut only_local = acl("orders-", PatternType::Prefixed, "User:alice", Write, Permission::Allow);
        only_local.host = "127.0.0.1".into();
        let acls =
            BTreeSet::from([only_local, acl("*", PatternType::Literal, "User:alice", Describe, Permission::Allow)]);
        assert!(authorizer.authorize(&acls, ALICE, Write, ResourceType::Topic, "orders-eu"));
        let remote = Requester { principal: "User:alice", host: "127.0.0.2" };
        assert!(!authorizer.authorize(&acls, remote, Write, ResourceType::Topic, "orders-eu"));
        assert!(!authorizer.authorize(&acls, ALICE, Write, ResourceType::Topic, "payments"));
        assert!(authorizer.authorize(&acls, remote, Describe, ResourceType::Topic, "payments"));
        assert!(!authorizer.authorize(&acls, ALICE, Describe, ResourceType::Group, "payments"));
    }

    #[test]
    fn the_walk_finds_exactly_the_acls_a_scan_of_every_acl_finds() {
        use rand::{Rng, SeedableRng};
        let seed = std::env::var("SLUICE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        println!("seed {seed} (replay with SLUICE_TEST_SEED={seed})");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Short names over a small alphabet, so that literal names, prefixes and wildcards overlap often.
        let name = |rng: &mut rand::rngs::StdRng| -> String {
            (0..rng.gen_range(1..=4)).map(|_| ['a', 'b', '*', 'é', 'è'][rng.gen_range(0..5)]).collect()
        };
        let operations = [AclOperation::All, AclOperation::Read, AclOperation::Write, AclOperation::Describe];
        let types = [ResourceType::Topic, ResourceType::Group];
        let principals = ["User:alice", "User:bob", "User:*"];
        for round in 0..300 {
            let acls: BTreeSet<AclBinding> = (0..rng.gen_range(0..40))
                .map(|_| AclBinding {
                    resource_type: types[rng.gen_range(0..2)],
                    name: name(&mut rng),
                    pattern: if rng.gen_bool(0.5) { PatternType::Literal } else { PatternType::Prefixed },
                    principal: principals[rng.gen_range(0..3)].into(),
                    host: if rng.gen_bool(0.8) { WILDCARD.into() } else { "127.0.0.2".into() },
                    operation: operations[rng.gen_range(0..4)],
                    permission: if rng.gen_bool(0.3) { Permission::Deny } else { Permission::Allow },
                })
                .collect();
            let authorizer = Authorizer::new("", rng.gen_bool(0.5));
            for _ in 0..50 {
                let (kind, resource) = (types[rng.gen_range(0..2)], name(&mut rng));
                let walked: Vec<&AclBinding> = covering(&acls, kind, &resource).collect();
                let who = Requester { principal: principals[rng.gen_range(0..2)], host: "127.0.0.1" };
                let one_by_one: Vec<AclOperation> = AclOperation::of(kind)
                    .iter()
                    .copied()
                    .filter(|op| authorizer.authorize(&acls, who, *op, kind, &resource))
                    .collect();
                assert_eq!(authorizer.authorized_operations(&acls, who, kind, &resource), one_by_one, "seed {seed}");
                let scanned: Vec<&AclBinding> =
                    acls.iter().filter(|a| a.resource_type == kind && pattern_covers(a, &resource)).collect();
                let walked_once: BTreeSet<&AclBinding> = walked.iter().copied().collect();
                assert_eq!(walked.len(), walked_once.len(), "seed {seed}: an ACL found twice for {resource:?}");
                assert_eq!(
                    walked_once,
                    scanned.into_iter().collect(),
                    "round {round}, seed {seed}: {kind:?} {resource:?} with {acls:#?}"
                );
            }
        }
    }

    #[test]
    fn filters_select_by_pattern_rules() {
        use AclOperation::*;
        let literal = acl("orders", PatternType::Literal, "User:a", Read, Permission::Allow);
        let prefixed = acl("ord", PatternType::Prefixed, "User:b", Write, Permission::Allow);
        let wildcard = acl("*", PatternType::Literal, "User:c", Describe, Permission::Deny);
        let all = |pattern, name: Option<&str>| AclFilter {
            resource_type: None,
            name: name.map(String::from),
            pattern,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        };
        let selected =
            |filter: &AclFilter| [&literal, &prefixed, &wildcard].into_iter().filter(|a| filter.matches(a)).count();
        assert_eq!(selected(&all(PatternFilter::Any, None)), 3);
        assert_eq!(selected(&all(PatternFilter::Any, Some("orders"))), 1);
        assert_eq!(selected(&all(PatternFilter::Match, Some("orders"))), 3);
        assert_eq!(selected(&all(PatternFilter::Exactly(PatternType::Prefixed), None)), 1);
        assert_eq!(selected(&all(PatternFilter::Exactly(PatternType::Literal), Some("ord"))), 0);
        let deny_only = AclFilter { permission: Some(Permission::Deny), ..all(PatternFilter::Any, None) };
        assert_eq!(selected(&deny_only), 1);
    }

    #[test]
    fn invalid_bindings_are_refused_with_a_reason() {
        use AclOperation::*;
        let good = acl("t", PatternType::Literal, "User:a", Read, Permission::Allow);
        assert!(validate(&good).is_ok());
        assert!(validate(&AclBinding { principal: "alice".into(), ..good.clone() }).is_err());
        assert!(validate(&AclBinding { resource_type: ResourceType::Cluster, ..good.clone() }).is_err());
        assert!(validate(&AclBinding { operation: IdempotentWrite, ..good.clone() }).is_err());
        assert!(validate(&AclBinding { name: "*".into(), pattern: PatternType::Prefixed, ..good }).is_err());
    }
}
