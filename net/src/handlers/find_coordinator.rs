//! FindCoordinator (API 10), versions 0-4: a group's coordinator is the leader of the group's
//! `__consumer_offsets` partition (Kafka's `abs(hashCode) % partitions`). While that topic does not exist the
//! active controller is asked to create it, and the answer is COORDINATOR_NOT_AVAILABLE, which clients retry;
//! a partition with no leader also answers COORDINATOR_NOT_AVAILABLE.
//!
//! Only group coordinators (key type 0) exist yet. A transaction coordinator lookup (key type 1) answers
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, with a message saying why: librdkafka and the Java client treat
//! that answer as fatal, so a transactional producer fails at `init_transactions` instead of retrying the
//! lookup until its timeout (they retry COORDINATOR_NOT_AVAILABLE and, librdkafka, INVALID_REQUEST).

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};
use sluice_replication::controller::commands::ControllerRequest;

use super::api::{text, versions, Api};
use crate::error::ResponseError;
use crate::groups::{partition_for_group, OFFSETS_TOPIC};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct FindCoordinator;

/// FindCoordinator's key types: a consumer group, or a transactional id.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// What a transactional producer is told.
const TRANSACTIONS_UNSUPPORTED: &str =
    "transactions are not supported by this broker yet; unset transactional.id (an idempotent producer still works)";

/// Where a key's coordinator is, or why there is none.
type Found = Result<(i32, String, i32), (ResponseError, Option<String>)>;

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
        if shard.image().topic(OFFSETS_TOPIC).is_none() && request.key_type == GROUP_KEY {
            if let Err(error) = shard.controller_call(ControllerRequest::EnsureOffsetsTopic).await {
                tracing::debug!(%error, "__consumer_offsets could not be created yet");
            }
        }
        let image = shard.image();
        let find = |key: &str| -> Found {
            match request.key_type {
                GROUP_KEY => {}
                TRANSACTION_KEY => {
                    return Err((
                        ResponseError::TransactionalIdAuthorizationFailed,
                        Some(TRANSACTIONS_UNSUPPORTED.into()),
                    ))
                }
                _ => {
                    return Err((ResponseError::InvalidRequest, Some(format!("unknown key type {}", request.key_type))))
                }
            }
            if key.is_empty() {
                return Err((ResponseError::InvalidRequest, Some("empty group id".into())));
            }
            if !shard.authorized(header, AclOperation::Describe, ResourceType::Group, key) {
                return Err((ResponseError::GroupAuthorizationFailed, None));
            }
            let Some(topic) = image.topic(OFFSETS_TOPIC) else {
                return Err((ResponseError::CoordinatorNotAvailable, None));
            };
            let partition = partition_for_group(key, topic.partitions.len() as i32);
            let leader = image.partition(OFFSETS_TOPIC, partition).map_or(-1, |p| p.leader);
            match image.brokers.get(&leader).filter(|b| !b.fenced) {
                Some(broker) => Ok((leader, broker.host.clone(), broker.port)),
                None => Err((ResponseError::CoordinatorNotAvailable, None)),
            }
        };
        if header.api_version >= 4 {
            let coordinators = request
                .coordinator_keys
                .iter()
                .map(|key| match find(key) {
                    Ok((node, host, port)) => CoordinatorEntry::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(text(&host))
                        .with_port(port),
                    Err((error, message)) => CoordinatorEntry::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(-1))
                        .with_host(text(""))
                        .with_port(-1)
                        .with_error_code(error.code())
                        .with_error_message(message.as_deref().map(text)),
                })
                .collect();
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let response = match find(&request.key) {
            Ok((node, host, port)) => {
                FindCoordinatorResponse::default().with_node_id(BrokerId(node)).with_host(text(&host)).with_port(port)
            }
            Err((error, message)) => {
                let response = FindCoordinatorResponse::default()
                    .with_error_code(error.code())
                    .with_node_id(BrokerId(-1))
                    .with_host(text(""))
                    .with_port(-1);
                if header.api_version >= 1 {
                    response.with_error_message(message.as_deref().map(text))
                } else {
                    response
                }
            }
        };
        response
    }
}
