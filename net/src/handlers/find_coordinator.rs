//! FindCoordinator (API 10), versions 0-4: every group's coordinator is this broker (its shards share the
//! port), once `__consumer_offsets` exists. Only group coordinators (key type 0) exist yet.

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use crate::error::ResponseError;
use crate::groups::OFFSETS_TOPIC;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct FindCoordinator;

impl Api for FindCoordinator {
    const KEY: ApiKey = ApiKey::FindCoordinator;
    const VERSIONS: VersionRange = versions(0, 4);
    type Request = FindCoordinatorRequest;
    type Response = FindCoordinatorResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let image = shard.image();
        let (host, port) = (shard.settings.advertised_host.clone(), shard.settings.advertised_port);
        let answer = |key: &str| -> (i16, Option<String>) {
            if request.key_type != 0 {
                return (
                    ResponseError::InvalidRequest.code(),
                    Some("only group coordinators (key type 0) exist yet".into()),
                );
            }
            if key.is_empty() {
                return (ResponseError::InvalidRequest.code(), Some("empty group id".into()));
            }
            if image.topic(OFFSETS_TOPIC).is_none() {
                return (ResponseError::CoordinatorNotAvailable.code(), None);
            }
            (0, None)
        };
        let node = BrokerId(shard.settings.node_id);
        if header.api_version >= 4 {
            let coordinators = request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let (error, message) = answer(key);
                    CoordinatorEntry::default()
                        .with_key(key.clone())
                        .with_node_id(if error == 0 { node } else { BrokerId(-1) })
                        .with_host(if error == 0 { text(&host) } else { text("") })
                        .with_port(if error == 0 { port } else { -1 })
                        .with_error_code(error)
                        .with_error_message(message.as_deref().map(text))
                })
                .collect();
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let (error, message) = answer(&request.key);
        let response = FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_node_id(if error == 0 { node } else { BrokerId(-1) })
            .with_host(if error == 0 { text(&host) } else { text("") })
            .with_port(if error == 0 { port } else { -1 });
        if header.api_version >= 1 {
            response.with_error_message(message.as_deref().map(text))
        } else {
            response
        }
    }
}
