//! ListOffsets (API 2), versions 1-10: earliest (-2), latest (-1, the high watermark, or the last stable
//! offset for read_committed), the first offset whose timestamp is at least a given time (-1 with
//! timestamp -1 when no record qualifies), and from v7-v9 (KIP-734, KIP-405) the record with the largest
//! timestamp (-3), the earliest local offset (-4: the log start, as nothing is tiered) and the latest tiered
//! offset (-5: -1, as nothing is tiered, which is Kafka's answer without remote storage). v10 adds only a
//! timeout for tiered lookups. Each partition is answered by its leader, on its owner shard.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_engine::Offset;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{topic_name, versions, Api};
use crate::error::{self, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const LATEST_TIERED: i64 = -5;

pub struct ListOffsets;

impl Api for ListOffsets {
    const KEY: ApiKey = ApiKey::ListOffsets;
    const VERSIONS: VersionRange = versions(1, 10);
    type Request = ListOffsetsRequest;
    type Response = ListOffsetsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: ListOffsetsRequest) -> ListOffsetsResponse {
        let read_committed = request.isolation_level == 1;
        // leader_epoch exists from v4; kafka-protocol refuses to encode a non-default value before that.
        let with_epoch = header.api_version >= 4;
        let mut topics = Vec::new();
        for topic in request.topics {
            let name = topic.name.to_string();
            let denied = !shard.authorized(header, AclOperation::Describe, ResourceType::Topic, &name);
            let calls = topic.partitions.into_iter().map(|partition| {
                let name = name.clone();
                let owner = shard.owner(&name, partition.partition_index);
                shard.run_on(owner, move |owner| async move {
                    let index = partition.partition_index;
                    let (error_code, offset, timestamp, leader_epoch) = if denied {
                        (ResponseError::TopicAuthorizationFailed.code(), -1, -1, -1)
                    } else {
                        list_partition(
                            &owner,
                            &name,
                            index,
                            partition.timestamp,
                            partition.current_leader_epoch,
                            read_committed,
                        )
                        .await
                    };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(error_code)
                        .with_offset(offset)
                        .with_timestamp(timestamp)
                        .with_leader_epoch(if with_epoch { leader_epoch } else { -1 })
                })
            });
            let partitions = futures::future::join_all(calls).await;
            topics.push(ListOffsetsTopicResponse::default().with_name(topic_name(&name)).with_partitions(partitions));
        }
        ListOffsetsResponse::default().with_topics(topics)
    }
}

/// (error code, offset, timestamp, leader epoch) for one partition.
async fn list_partition(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    timestamp: i64,
    current_leader_epoch: i32,
    read_committed: bool,
) -> (i16, i64, i64, i32) {
    let (log, leader) = match shard.leader_log(topic, partition) {
        Ok(found) => found,
        Err(error) => return (error.code(), -1, -1, -1),
    };
    if let Some(error) = shard.check_leader_epoch(&leader, current_leader_epoch) {
        return (error.code(), -1, -1, -1);
    }
    let epoch = leader.leader_epoch();
    let upper = if read_committed { log.last_stable_offset() } else { log.high_watermark() };
    let found = match timestamp {
        EARLIEST | EARLIEST_LOCAL => return (error::NONE, log.log_start_offset().0, -1, epoch),
        LATEST => return (error::NONE, upper.0, -1, epoch),
        LATEST_TIERED => return (error::NONE, -1, -1, -1),
        MAX_TIMESTAMP => log.offset_of_max_timestamp(upper).await,
        ts if ts >= 0 => log.offset_for_timestamp(ts, upper).await,
        _ => return (ResponseError::InvalidRequest.code(), -1, -1, -1),
    };
    match found {
        Ok(Some((Offset(offset), found))) => {
            let batch_epoch = log.epoch_cache().epoch_for_offset(Offset(offset)).map_or(epoch, |e| e.0);
            (error::NONE, offset, found, batch_epoch)
        }
        Ok(None) => (error::NONE, -1, -1, -1),
        Err(engine_error) => (error::engine_error_code(&engine_error), -1, -1, -1),
    }
}
