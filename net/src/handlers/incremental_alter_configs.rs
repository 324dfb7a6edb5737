//! IncrementalAlterConfigs (API 44), versions 0-1: SET, DELETE, APPEND and SUBTRACT single keys of a topic or
//! a broker; APPEND and SUBTRACT apply to list-typed keys (`cleanup.policy`, the replication throttle lists),
//! start from the key's default when it has no value, and are refused with INVALID_CONFIG on others, as Kafka
//! does (`replication/src/controller/configs.rs`). The change pipeline is in `config_changes.rs`.

use std::rc::Rc;

use kafka_protocol::messages::{
    incremental_alter_configs_response, ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::controller::commands::ConfigOp;

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
        header: &RequestHeader,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let mut unsupported = Vec::new();
        let mut changes = Vec::new();
        for resource in request.resources {
            let name = resource.resource_name.to_string();
            let mut ops = Vec::new();
            let mut bad_op = None;
            for config in resource.configs {
                let value = config.value.map(|v| v.to_string()).unwrap_or_default();
                let op = match config.config_operation {
                    0 => ConfigOp::Set(value),
                    1 => ConfigOp::Delete,
                    2 => ConfigOp::Append(value),
                    3 => ConfigOp::Subtract(value),
                    other => {
                        bad_op = Some(other);
                        continue;
                    }
                };
                ops.push((config.name.to_string(), op));
            }
            match bad_op {
                Some(op) => unsupported.push((resource.resource_type, name, op)),
                None => changes.push(Change { resource_type: resource.resource_type, name, ops, replace: false }),
            }
        }
        let mut results = apply(shard, header, changes, request.validate_only).await;
        for (resource_type, name, op) in unsupported {
            let message = format!("config operation {op} is not SET, DELETE, APPEND or SUBTRACT");
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
