//! CreateAcls (API 30), versions 1-3: adds ACLs through the controller, so every node's authorizer holds them
//! once it has applied the change. Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclBinding, AclOperation, PatternFilter};
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse};

use super::api::{text, versions, Api};
use crate::authorize::{operation, pattern_filter, permission, resource_type};
use crate::error::admin_error;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct CreateAcls;

impl Api for CreateAcls {
    const KEY: ApiKey = ApiKey::CreateAcls;
    const VERSIONS: VersionRange = versions(1, 3);
    type Request = CreateAclsRequest;
    type Response = CreateAclsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: CreateAclsRequest) -> CreateAclsResponse {
        let refuse = |error: ResponseError, message: &str| {
            let result =
                AclCreationResult::default().with_error_code(error.code()).with_error_message(Some(text(message)));
            CreateAclsResponse::default().with_results(vec![result; request.creations.len()])
        };
        if let Some((error, message)) = shard.acl_api_refusal(header, AclOperation::Alter) {
            return refuse(error, &message);
        }
        // Bindings that do not parse are answered here; the others go to the controller in one command.
        let parsed: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding).collect();
        let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut answers = match shard.controller_call(ControllerRequest::CreateAcls { acls: valid.clone() }).await {
            Ok(ControllerResponse::CreateAcls(answers)) if answers.len() == valid.len() => answers
                .into_iter()
                .map(|a| a.err().map(|e| (admin_error(&e), e.message)))
                .collect::<Vec<_>>()
                .into_iter(),
            Ok(other) => {
                vec![Some((ResponseError::UnknownServerError, format!("unexpected answer {other:?}"))); valid.len()]
                    .into_iter()
            }
            Err(error) => vec![Some((admin_error(&error), error.message)); valid.len()].into_iter(),
        };
        let results = parsed
            .into_iter()
            .map(|p| {
                let failure = match p {
                    Err(reason) => Some((ResponseError::InvalidRequest, reason)),
                    Ok(_) => answers.next().flatten(),
                };
                match failure {
                    Some((error, message)) => AclCreationResult::default()
                        .with_error_code(error.code())
                        .with_error_message(Some(text(&message))),
                    None => AclCreationResult::default(),
                }
            })
            .collect();
        CreateAclsResponse::default().with_results(results)
    }
}

/// One creation as a binding: ANY, MATCH and UNKNOWN have no place in an ACL.
fn binding(creation: &AclCreation) -> Result<AclBinding, String> {
    let pattern = match pattern_filter(creation.resource_pattern_type)? {
        PatternFilter::Exactly(pattern) => pattern,
        _ => return Err("an ACL's pattern type must be LITERAL or PREFIXED".into()),
    };
    Ok(AclBinding {
        resource_type: resource_type(creation.resource_type)?.ok_or("an ACL's resource type cannot be ANY")?,
        name: creation.resource_name.to_string(),
        pattern,
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation: operation(creation.operation)?.ok_or("an ACL's operation cannot be ANY")?,
        permission: permission(creation.permission_type)?.ok_or("an ACL's permission type cannot be ANY")?,
    })
}
