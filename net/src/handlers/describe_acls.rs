//! DescribeAcls (API 29), versions 1-3: the ACLs a filter selects, from this node's metadata image, grouped by
//! resource pattern. Needs DESCRIBE on the cluster; SECURITY_DISABLED without an authorizer.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{text, versions, Api};
use crate::authorize::{acl_filter, operation_code, pattern_type_code, permission_code, resource_type_code};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeAcls;

impl Api for DescribeAcls {
    const KEY: ApiKey = ApiKey::DescribeAcls;
    const VERSIONS: VersionRange = versions(1, 3);
    type Request = DescribeAclsRequest;
    type Response = DescribeAclsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DescribeAclsRequest) -> DescribeAclsResponse {
        let refuse = |error: ResponseError, message: String| {
            DescribeAclsResponse::default().with_error_code(error.code()).with_error_message(Some(text(&message)))
        };
        if let Some((error, message)) = shard.acl_api_refusal(header, AclOperation::Describe) {
            return refuse(error, message);
        }
        let filter = match acl_filter(
            request.resource_type_filter,
            request.resource_name_filter.as_deref(),
            request.pattern_type_filter,
            request.principal_filter.as_deref(),
            request.host_filter.as_deref(),
            request.operation,
            request.permission_type,
        ) {
            Ok(filter) => filter,
            Err(reason) => return refuse(ResponseError::InvalidRequest, reason),
        };
        let image = shard.image();
        let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
        for acl in image.acls.iter().filter(|a| filter.matches(a)) {
            resources.entry((acl.resource_type, acl.name.clone(), acl.pattern)).or_default().push(
                AclDescription::default()
                    .with_principal(text(&acl.principal))
                    .with_host(text(&acl.host))
                    .with_operation(operation_code(acl.operation))
                    .with_permission_type(permission_code(acl.permission)),
            );
        }
        let resources = resources
            .into_iter()
            .map(|((kind, name, pattern), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(resource_type_code(kind))
                    .with_resource_name(text(&name))
                    .with_pattern_type(pattern_type_code(pattern))
                    .with_acls(acls)
            })
            .collect();
        DescribeAclsResponse::default().with_resources(resources)
    }
}
