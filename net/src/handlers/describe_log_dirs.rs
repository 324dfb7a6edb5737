//! DescribeLogDirs (API 35), versions 1-4: this broker's log directory (`log.dirs`; Sluice keeps one) with the
//! size of every partition replica it holds there, gathered from every shard, and from v4 the file system's
//! total and usable bytes. `kafka-log-dirs` and `kafka-reassign-partitions` ask for it. As in Kafka's
//! `ReplicaManager.describeLogDirs`, a null topic list means every partition, requested partitions this broker
//! does not hold are left out, and a replica's offset lag is how far its log end is behind its high watermark
//! (0 on a leader; Sluice has no future replicas moving between directories).

use std::path::Path;
use std::rc::Rc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{text, versions, Api};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeLogDirs;

/// One replica this broker holds: (topic, partition, size in bytes, offset lag).
type Replica = (String, i32, i64, i64);

impl Api for DescribeLogDirs {
    const KEY: ApiKey = ApiKey::DescribeLogDirs;
    const VERSIONS: VersionRange = versions(1, 4);
    type Request = DescribeLogDirsRequest;
    type Response = DescribeLogDirsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeLogDirsRequest,
    ) -> DescribeLogDirsResponse {
        // Kafka's check: DESCRIBE on the cluster, else an empty answer (with the code from v3).
        if !shard.authorized_on_cluster(header, AclOperation::Describe) {
            return DescribeLogDirsResponse::default().with_error_code(if header.api_version >= 3 {
                crate::error::ResponseError::ClusterAuthorizationFailed.code()
            } else {
                0
            });
        }
        let wanted = |topic: &str, partition: i32| match &request.topics {
            None => true,
            Some(topics) => topics.iter().any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
        };
        let calls = (0..shard.shards()).map(|target| shard.run_on(target, |shard| async move { replicas(&shard) }));
        let mut held: Vec<Replica> = futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .filter(|(topic, partition, _, _)| wanted(topic, *partition))
            .collect();
        held.sort();
        let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
        for (topic, partition, size, lag) in held {
            let entry = DescribeLogDirsPartition::default()
                .with_partition_index(partition)
                .with_partition_size(size)
                .with_offset_lag(lag)
                .with_is_future_key(false);
            match topics.last_mut() {
                Some(last) if last.name.as_str() == topic => last.partitions.push(entry),
                _ => topics.push(
                    DescribeLogDirsTopic::default().with_name(TopicName(text(&topic))).with_partitions(vec![entry]),
                ),
            }
        }
        let dir = shard.manager.data_dir();
        let mut result =
            DescribeLogDirsResult::default().with_log_dir(text(&dir.display().to_string())).with_topics(topics);
        if header.api_version >= 4 {
            match space(dir) {
                Some((total, usable)) => result = result.with_total_bytes(total).with_usable_bytes(usable),
                None => result = result.with_error_code(ResponseError::KafkaStorageError.code()),
            }
        }
        DescribeLogDirsResponse::default().with_results(vec![result])
    }
}

/// The replicas this shard holds, with their sizes and offset lags.
fn replicas(shard: &Shard) -> Vec<Replica> {
    shard
        .manager
        .partitions()
        .into_iter()
        .filter_map(|tp| {
            let log = shard.manager.get(&tp)?;
            let size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
            let lag = (log.high_watermark().0 - log.log_end_offset().0).max(0);
            Some((tp.topic.to_string(), tp.partition, size, lag))
        })
        .collect()
}

/// (total, usable) bytes of the file system holding `dir`, as Java's `FileStore` reports them.
fn space(dir: &Path) -> Option<(i64, i64)> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` is writable memory of the right size.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    let fragment = stat.f_frsize as u128;
    let bytes = |blocks: u64| i64::try_from(u128::from(blocks) * fragment).unwrap_or(i64::MAX);
    Some((bytes(stat.f_blocks), bytes(stat.f_bavail)))
}
