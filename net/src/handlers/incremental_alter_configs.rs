//! IncrementalAlterConfigs (API 44), versions 0-1: sets or deletes single keys of a topic or this broker.
//! APPEND and SUBTRACT need list-typed keys, which Sluice has none of. The change pipeline is in
//! `config_changes.rs`.

use std::rc::Rc;

use kafka_protocol::messages::{
    incremental_alter_configs_response, ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use super::config_changes::{apply, Change};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct IncrementalAlterConfigs;

impl Api for IncrementalAlterConfigs {
    const KEY: ApiKey = ApiKey::IncrementalAlterConfigs;
    const VERSIONS: VersionRange = versions(0, 1);
    type Request = IncrementalAlterConfigsRequest;
    type Response = IncrementalAlterConfigsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        _header: &RequestHeader,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let mut unsupported = Vec::new();
        let mut changes = Vec::new();
        for resource in request.resources {
            let name = resource.resource_name.to_string();
            let mut ops = Vec::new();
            let mut bad_op = None;
            for config in resource.configs {
                match config.config_operation {
                    0 => ops
                        .push((config.name.to_string(), Some(config.value.map(|v| v.to_string()).unwrap_or_default()))),
                    1 => ops.push((config.name.to_string(), None)),
                    op => bad_op = Some(op),
                }
            }
            match bad_op {
                Some(op) => unsupported.push((resource.resource_type, name, op)),
                None => changes.push(Change { resource_type: resource.resource_type, name, ops, replace: false }),
            }
        }
        let mut results = apply(shard, changes, request.validate_only).await;
        for (resource_type, name, op) in unsupported {
            let message = format!("config operation {op} (APPEND/SUBTRACT) needs a list-typed key; Sluice has none");
            results.push((resource_type, name, Some((ResponseError::InvalidRequest, message))));
        }
        let responses = results
            .into_iter()
            .map(|(resource_type, name, failure)| {
                let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(text(&name));
                match failure {
                    Some((error, message)) => {
                        response.with_error_code(error.code()).with_error_message(Some(text(&message)))
                    }
                    None => response,
                }
            })
            .collect();
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }
}
