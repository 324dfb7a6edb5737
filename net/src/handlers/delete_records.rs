//! DeleteRecords (API 21), versions 0-2: moves a partition's log start offset forward (offset -1 means the
//! high watermark) and deletes whole segments below it. Answered by each partition's leader (on its owner
//! shard); followers take the new log start offset from their next fetch. Internal topics are refused with
//! INVALID_TOPIC_EXCEPTION, as Kafka's `ReplicaManager` does: deleting `__consumer_offsets` records would lose
//! the committed offsets of live groups.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_engine::Offset;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{is_internal_topic, topic_name, versions, Api};
use crate::error::{self, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DeleteRecords;

impl Api for DeleteRecords {
    const KEY: ApiKey = ApiKey::DeleteRecords;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = DeleteRecordsRequest;
    type Response = DeleteRecordsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
        let mut topics = Vec::new();
        for topic in request.topics {
            let name = topic.name.to_string();
            let denied = !shard.authorized(header, AclOperation::Delete, ResourceType::Topic, &name);
            let calls = topic.partitions.into_iter().map(|partition| {
                let name = name.clone();
                let owner = shard.owner(&name, partition.partition_index);
                shard.run_on(owner, move |owner| async move {
                    let result =
                        DeleteRecordsPartitionResult::default().with_partition_index(partition.partition_index);
                    if denied {
                        return result
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_low_watermark(-1);
                    }
                    if is_internal_topic(&name) {
                        return result
                            .with_error_code(ResponseError::InvalidTopicException.code())
                            .with_low_watermark(-1);
                    }
                    let log = match owner.leader_log(&name, partition.partition_index) {
                        Ok((log, _)) => log,
                        Err(error) => return result.with_error_code(error.code()).with_low_watermark(-1),
                    };
                    let high_watermark = log.high_watermark();
                    let target = if partition.offset == -1 { high_watermark } else { Offset(partition.offset) };
                    if target.0 < 0 || target > high_watermark {
                        return result.with_error_code(ResponseError::OffsetOutOfRange.code()).with_low_watermark(-1);
                    }
                    match log.delete_records_before(target).await {
                        Ok(low) => result.with_low_watermark(low.0),
                        Err(engine_error) => {
                            result.with_error_code(error::engine_error_code(&engine_error)).with_low_watermark(-1)
                        }
                    }
                })
            });
            let partitions = futures::future::join_all(calls).await;
            topics.push(DeleteRecordsTopicResult::default().with_name(topic_name(&name)).with_partitions(partitions));
        }
        DeleteRecordsResponse::default().with_topics(topics)
    }
}
