//! AlterConfigs (API 33), versions 0-2: replaces a topic's or a broker's whole override set, as Kafka's does
//! (keys not named are removed). The change pipeline is in `config_changes.rs`.

use std::rc::Rc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::controller::commands::ConfigOp;

use super::api::{text, versions, Api};
use super::config_changes::{apply, Change};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct AlterConfigs;

impl Api for AlterConfigs {
    const KEY: ApiKey = ApiKey::AlterConfigs;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = AlterConfigsRequest;
    type Response = AlterConfigsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: AlterConfigsRequest) -> AlterConfigsResponse {
        let changes = request
            .resources
            .into_iter()
            .map(|resource| Change {
                resource_type: resource.resource_type,
                name: resource.resource_name.to_string(),
                ops: resource
                    .configs
                    .into_iter()
                    .map(|c| {
                        let op = match c.value {
                            Some(value) => ConfigOp::Set(value.to_string()),
                            None => ConfigOp::Delete,
                        };
                        (c.name.to_string(), op)
                    })
                    .collect(),
                replace: true,
            })
            .collect();
        let responses = apply(shard, header, changes, request.validate_only)
            .await
            .into_iter()
            .map(|(resource_type, name, failure)| {
                let response = AlterConfigsResourceResponse::default()
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
        AlterConfigsResponse::default().with_responses(responses)
    }
}
