//! DeleteAcls (API 31), versions 1-3: removes the ACLs each filter selects, through the controller, and
//! answers per filter with the ACLs it removed. Needs ALTER on the cluster; SECURITY_DISABLED without an
//! authorizer.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclFilter, AclOperation};
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse};

use super::api::{text, versions, Api};
use crate::authorize::{acl_filter, operation_code, pattern_type_code, permission_code, resource_type_code};
use crate::error::admin_error;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DeleteAcls;

impl Api for DeleteAcls {
    const KEY: ApiKey = ApiKey::DeleteAcls;
    const VERSIONS: VersionRange = versions(1, 3);
    type Request = DeleteAclsRequest;
    type Response = DeleteAclsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteAclsRequest) -> DeleteAclsResponse {
        let failed = |error: ResponseError, message: &str| {
            DeleteAclsFilterResult::default().with_error_code(error.code()).with_error_message(Some(text(message)))
        };
        let refuse = |error: ResponseError, message: &str| {
            DeleteAclsResponse::default().with_filter_results(vec![failed(error, message); request.filters.len()])
        };
        if let Some((error, message)) = shard.acl_api_refusal(header, AclOperation::Alter) {
            return refuse(error, &message);
        }
        let parsed: Vec<Result<AclFilter, String>> = request
            .filters
            .iter()
            .map(|f| {
                acl_filter(
                    f.resource_type_filter,
                    f.resource_name_filter.as_deref(),
                    f.pattern_type_filter,
                    f.principal_filter.as_deref(),
                    f.host_filter.as_deref(),
                    f.operation,
                    f.permission_type,
                )
            })
            .collect();
        let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let answers = match shard.controller_call(ControllerRequest::DeleteAcls { filters: valid.clone() }).await {
            Ok(ControllerResponse::DeleteAcls(answers)) if answers.len() == valid.len() => Ok(answers),
            Ok(other) => Err((ResponseError::UnknownServerError, format!("unexpected answer {other:?}"))),
            Err(error) => Err((admin_error(&error), error.message)),
        };
        let mut removed = match answers {
            Ok(answers) => answers.into_iter(),
            Err((error, message)) => return refuse(error, &message),
        };
        let results = parsed
            .into_iter()
            .map(|p| match p {
                Err(reason) => failed(ResponseError::InvalidRequest, &reason),
                Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                    removed
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|acl| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(resource_type_code(acl.resource_type))
                                .with_resource_name(text(&acl.name))
                                .with_pattern_type(pattern_type_code(acl.pattern))
                                .with_principal(text(&acl.principal))
                                .with_host(text(&acl.host))
                                .with_operation(operation_code(acl.operation))
                                .with_permission_type(permission_code(acl.permission))
                        })
                        .collect(),
                ),
            })
            .collect();
        DeleteAclsResponse::default().with_filter_results(results)
    }
}
