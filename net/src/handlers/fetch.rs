//! Fetch (API 1), versions 4-12: reads on the owner shards, long polls woken by the high watermark (or, for
//! followers, the log end), and a hand-assembled response whose record sets are file slices sent with
//! `sendfile(2)`: consumers and follower brokers alike get zero-copy reads of the leader's segments.
//!
//! Flow on the connection's shard: read every partition on its owner, concurrently, each bounded by its
//! `partition_max_bytes` and by the request's `max_bytes`; then fit them into `max_bytes` in request order
//! (KIP-74): the first non-empty one is kept whole (so its first batch comes whole even when it alone is
//! larger), later ones while they fit, and the one that would pass the limit is cut on its owner to the
//! whole batches that still fit; nothing after it is sent. Slices are file ranges sent with zero copy, so the
//! limit is applied to the ranges chosen, never to bytes read. If fewer than `min_bytes` arrived, ask the
//! owners to wait until any of those partitions' high watermark moves or `max_wait_ms` passes, then read
//! again. Sessions are not kept: every answer carries session id 0, which tells clients to send full requests
//! (KIP-227). Followers' fetches take the same path, so the replica fetcher's `max_bytes` holds too.
//!
//! A fetch with `replica_id` set is a follower's: only the leader answers it, the replication layer checks
//! its leader epoch and last fetched epoch (answering `diverging_epoch` where the logs part) and records its
//! progress, and it reads up to the log end rather than the high watermark.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::future;
use kafka_protocol::messages::{ApiKey, FetchRequest};
use kafka_protocol::protocol::VersionRange;
use sluice_engine::FileSlice;

use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{versions, Api};
use crate::error::{self, ResponseError};
use crate::response::{Chunk, Response};
use crate::shard::Shard;
use crate::wire::{response_header_version, RequestHeader, WriteExt};

/// One partition's read, done on its owner.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub slice: Option<FileSlice>,
    /// For a follower whose log parts from the leader's: (epoch, end offset) to truncate to.
    pub diverging_epoch: Option<(i32, i64)>,
}

impl PartitionRead {
    fn error(error: ResponseError) -> Self {
        PartitionRead {
            error_code: error.code(),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            slice: None,
            diverging_epoch: None,
        }
    }

    fn bytes(&self) -> usize {
        self.slice.as_ref().map_or(0, |slice| slice.len as usize)
    }
}

#[derive(Debug, Clone)]
struct PartitionFetch {
    topic: String,
    partition: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    log_start_offset: i64,
    /// Refused before any read: the client may not read the topic (or, a follower, act as a replica).
    denied: Option<ResponseError>,
    max_bytes: usize,
}

/// Who fetches: a consumer, or a follower broker (its id and broker epoch).
#[derive(Debug, Clone, Copy)]
enum Fetcher {
    Consumer { read_committed: bool },
    Follower { replica: i32, broker_epoch: i64 },
}

/// Fetch (API 1): see the module doc.
pub struct Fetch;

impl Api for Fetch {
    const KEY: ApiKey = ApiKey::Fetch;
    const VERSIONS: VersionRange = versions(4, 12);
    type Request = FetchRequest;
    type Response = Response;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: FetchRequest) -> Response {
        fetch(shard, header, request).await
    }
}

async fn fetch(shard: &Rc<Shard>, header: &RequestHeader, request: FetchRequest) -> Response {
    let fetcher = if request.replica_id.0 >= 0 {
        let broker_epoch = request
            .unknown_tagged_fields
            .get(&crate::replica_fetch::BROKER_EPOCH_TAG)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map_or(-1, i64::from_be_bytes);
        Fetcher::Follower { replica: request.replica_id.0, broker_epoch }
    } else {
        Fetcher::Consumer { read_committed: request.isolation_level == 1 }
    };
    let max_bytes = usize::try_from(request.max_bytes.max(0)).unwrap_or(0);
    let mut fetches = Vec::new();
    // Kafka's checks: a follower needs CLUSTER_ACTION on the cluster, a consumer READ on each topic.
    let follower_denied = matches!(fetcher, Fetcher::Follower { .. })
        && !shard.authorized_on_cluster(header, AclOperation::ClusterAction);
    for topic in &request.topics {
        let denied = if follower_denied {
            Some(ResponseError::ClusterAuthorizationFailed)
        } else if matches!(fetcher, Fetcher::Consumer { .. })
            && !shard.authorized(header, AclOperation::Read, ResourceType::Topic, &topic.topic)
        {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        for partition in &topic.partitions {
            let partition_max_bytes = usize::try_from(partition.partition_max_bytes.max(0)).unwrap_or(0);
            fetches.push(PartitionFetch {
                topic: topic.topic.to_string(),
                partition: partition.partition,
                fetch_offset: partition.fetch_offset,
                current_leader_epoch: partition.current_leader_epoch,
                last_fetched_epoch: partition.last_fetched_epoch,
                log_start_offset: partition.log_start_offset,
                // No partition needs more than the whole request may carry; a read returns its first batch
                // whole even past this, so a request limit of 0 still reads one batch.
                max_bytes: partition_max_bytes.min(max_bytes.max(1)),
                denied,
            });
        }
    }
    let min_bytes = usize::try_from(request.min_bytes.max(0)).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0));
    let mut reads = read_all(shard, &fetches, fetcher).await;
    loop {
        fit_to_request_limit(shard, &fetches, &mut reads, max_bytes).await;
        let total: usize = reads.iter().map(PartitionRead::bytes).sum();
        let any_error = reads.iter().any(|read| read.error_code != error::NONE || read.diverging_epoch.is_some());
        // Kafka's rule (`ReplicaManager.fetchMessages`): answer at once when the bytes reach `min_bytes`, so a
        // fetch with `min_bytes=0` never waits, even with nothing to return.
        if total >= min_bytes || any_error || Instant::now() >= deadline || fetches.is_empty() {
            break;
        }
        wait_for_data(shard, &fetches, &reads, fetcher, deadline).await;
        // Read again whether woken or timed out: data may have come in just as the wait ended.
        reads = read_all(shard, &fetches, fetcher).await;
    }
    record_metrics(&request, &reads, fetcher);
    assemble(header, &request, &reads)
}

/// Counts the answer's error codes, and its record bytes per topic when a consumer asked.
fn record_metrics(request: &FetchRequest, reads: &[PartitionRead], fetcher: Fetcher) {
    let mut reads = reads.iter();
    for topic in &request.topics {
        let mut bytes = 0;
        for read in reads.by_ref().take(topic.partitions.len()) {
            crate::metrics::record_error(ApiKey::Fetch as i16, read.error_code);
            bytes += read.bytes() as u64;
        }
        if matches!(fetcher, Fetcher::Consumer { .. }) {
            crate::metrics::record_fetched(&topic.topic, bytes);
        }
    }
}

/// Reads every partition on its owner, concurrently.
async fn read_all(shard: &Rc<Shard>, fetches: &[PartitionFetch], fetcher: Fetcher) -> Vec<PartitionRead> {
    let calls = fetches.iter().cloned().map(|fetch| async move {
        if let Some(error) = fetch.denied {
            return PartitionRead::error(error);
        }
        let owner = shard.owner(&fetch.topic, fetch.partition);
        shard
            .run_on(owner, move |owner| async move {
                match fetcher {
                    Fetcher::Consumer { read_committed } => read_partition(&owner, &fetch, read_committed).await,
                    Fetcher::Follower { replica, broker_epoch } => {
                        read_for_follower(&owner, &fetch, replica, broker_epoch).await
                    }
                }
            })
            .await
    });
    future::join_all(calls).await
}

/// A follower's read: the replication layer checks it and records the follower's progress; the data goes up
/// to the log end.
async fn read_for_follower(
    shard: &Rc<Shard>,
    fetch: &PartitionFetch,
    replica: i32,
    broker_epoch: i64,
) -> PartitionRead {
    let log = match shard.local_log(&fetch.topic, fetch.partition) {
        Ok(log) => log,
        Err(error) => return PartitionRead::error(error),
    };
    let Some(replicas) = shard.replicas() else { return PartitionRead::error(ResponseError::NotLeaderOrFollower) };
    let request = sluice_replication::replica::FetchPartition {
        tp: log.topic_partition().clone(),
        fetch_offset: fetch.fetch_offset,
        last_fetched_epoch: fetch.last_fetched_epoch,
        current_leader_epoch: fetch.current_leader_epoch,
        log_start_offset: fetch.log_start_offset,
        max_bytes: i32::try_from(fetch.max_bytes).unwrap_or(i32::MAX),
    };
    let answer = match replicas.follower_fetch(replica, broker_epoch, &request) {
        Ok(answer) => answer,
        Err(refused) => {
            // The follower needs the leader's log start and high watermark to recover from out of range.
            let mut read = PartitionRead::error(error::replica_error(refused));
            read.high_watermark = log.high_watermark().0;
            read.log_start_offset = log.log_start_offset().0;
            return read;
        }
    };
    let mut read = PartitionRead {
        error_code: error::NONE,
        high_watermark: answer.high_watermark.0,
        last_stable_offset: log.last_stable_offset().0,
        log_start_offset: answer.log_start.0,
        slice: None,
        diverging_epoch: answer.diverging,
    };
    if answer.diverging.is_some()
        || answer.throttled
        || fetch.max_bytes == 0
        || fetch.fetch_offset >= log.log_end_offset().0
    {
        return read;
    }
    match log.read(sluice_engine::Offset(fetch.fetch_offset), fetch.max_bytes, log.log_end_offset()).await {
        Ok(slice) => {
            if let Some(slice) = &slice {
                replicas.record_follower_read(log.topic_partition(), replica, slice.len as usize);
            }
            read.slice = slice
        }
        Err(engine_error) => {
            tracing::warn!(topic = %fetch.topic, partition = fetch.partition, error = %engine_error, "replica read failed");
            read.error_code = error::engine_error_code(&engine_error);
        }
    }
    read
}

async fn read_partition(shard: &Rc<Shard>, fetch: &PartitionFetch, read_committed: bool) -> PartitionRead {
    let (log, leader) = match shard.leader_log(&fetch.topic, fetch.partition) {
        Ok(found) => found,
        Err(error) => return PartitionRead::error(error),
    };
    if let Some(error) = shard.check_leader_epoch(&leader, fetch.current_leader_epoch) {
        return PartitionRead::error(error);
    }
    let high_watermark = log.high_watermark();
    let last_stable = log.last_stable_offset();
    let log_start = log.log_start_offset();
    let upper = if read_committed { last_stable } else { high_watermark };
    let mut read = PartitionRead {
        error_code: error::NONE,
        high_watermark: high_watermark.0,
        last_stable_offset: last_stable.0,
        log_start_offset: log_start.0,
        slice: None,
        diverging_epoch: None,
    };
    if fetch.fetch_offset < log_start.0 || fetch.fetch_offset > log.log_end_offset().0 {
        read.error_code = ResponseError::OffsetOutOfRange.code();
        return read;
    }
    if fetch.fetch_offset >= upper.0 || fetch.max_bytes == 0 {
        return read;
    }
    match log.read(sluice_engine::Offset(fetch.fetch_offset), fetch.max_bytes, upper).await {
        Ok(slice) => read.slice = slice,
        Err(engine_error) => {
            tracing::warn!(topic = %fetch.topic, partition = fetch.partition, error = %engine_error, "fetch read failed");
            read.error_code = error::engine_error_code(&engine_error);
        }
    }
    read
}

/// What becomes of one partition's slice when the answer is fitted into `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Keep,
    /// Cut to the whole batches within this many bytes.
    CutTo(usize),
    Drop,
}

/// KIP-74 in request order, over the slices' sizes (0 for none): the first non-empty slice stays whole,
/// later ones stay while the total fits `max_bytes`, the first that would pass it is cut to what is left,
/// and every one after that is dropped.
fn plan_fit(sizes: &[usize], max_bytes: usize) -> Vec<Fit> {
    let mut total = 0usize;
    let mut full = false;
    sizes
        .iter()
        .map(|&bytes| {
            if bytes == 0 {
                Fit::Keep
            } else if full {
                Fit::Drop
            } else if total == 0 || total + bytes <= max_bytes {
                total += bytes;
                Fit::Keep
            } else {
                full = true;
                match max_bytes.saturating_sub(total) {
                    0 => Fit::Drop,
                    left => Fit::CutTo(left),
                }
            }
        })
        .collect()
}

/// Fits the reads into the request's `max_bytes` ([`plan_fit`]); a cut runs on the partition's owner
/// ([`sluice_engine::PartitionLog::slice_prefix`]), which may find that not even one batch fits. The answer
/// then holds at most `max_bytes` of records, unless its first batch alone is larger.
async fn fit_to_request_limit(
    shard: &Rc<Shard>,
    fetches: &[PartitionFetch],
    reads: &mut [PartitionRead],
    max_bytes: usize,
) {
    let sizes: Vec<usize> = reads.iter().map(PartitionRead::bytes).collect();
    for ((fetch, read), fit) in fetches.iter().zip(reads.iter_mut()).zip(plan_fit(&sizes, max_bytes)) {
        match fit {
            Fit::Keep => {}
            Fit::Drop => read.slice = None,
            Fit::CutTo(left) => {
                read.slice = match read.slice.take() {
                    Some(slice) => cut_on_owner(shard, fetch, slice, left).await,
                    None => None,
                }
            }
        }
    }
    let total: usize = reads.iter().map(PartitionRead::bytes).sum();
    assert!(
        total <= max_bytes || reads.iter().filter(|read| read.bytes() > 0).count() <= 1,
        "a fetch answer passes max_bytes with more than its first partition"
    );
}

/// The part of `slice` that fits `max_bytes` in whole batches, worked out on the partition's owner (which
/// knows the segment's batch boundaries); `None` when not even its first batch fits.
async fn cut_on_owner(
    shard: &Rc<Shard>,
    fetch: &PartitionFetch,
    slice: FileSlice,
    max_bytes: usize,
) -> Option<FileSlice> {
    let owner = shard.owner(&fetch.topic, fetch.partition);
    let (topic, partition) = (fetch.topic.clone(), fetch.partition);
    shard
        .run_on(owner, move |owner| async move {
            let log = owner.local_log(&topic, partition).ok()?;
            match log.slice_prefix(&slice, max_bytes).await {
                Ok(prefix) => prefix,
                Err(error) => {
                    tracing::warn!(%topic, partition, %error, "cutting a fetch slice to max_bytes failed");
                    None
                }
            }
        })
        .await
}

/// Waits on the owners until one of the partitions' high watermark (for a follower: log end) passes what was
/// read, or the deadline.
async fn wait_for_data(
    shard: &Rc<Shard>,
    fetches: &[PartitionFetch],
    reads: &[PartitionRead],
    fetcher: Fetcher,
    deadline: Instant,
) {
    let follower = matches!(fetcher, Fetcher::Follower { .. });
    let mut by_owner: Vec<Vec<(String, i32, i64)>> = vec![Vec::new(); shard.shards()];
    for (fetch, read) in fetches.iter().zip(reads) {
        let seen = if follower { fetch.fetch_offset } else { read.high_watermark.max(fetch.fetch_offset) };
        by_owner[shard.owner(&fetch.topic, fetch.partition)].push((fetch.topic.clone(), fetch.partition, seen));
    }
    let waits: Vec<_> =
        by_owner
            .into_iter()
            .enumerate()
            .filter(|(_, partitions)| !partitions.is_empty())
            .map(|(owner, partitions)| {
                Box::pin(shard.run_on(owner, move |owner| async move {
                    wait_on_owner(&owner, partitions, follower, deadline).await
                }))
            })
            .collect();
    if waits.is_empty() {
        return;
    }
    let timer = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
    futures::pin_mut!(timer);
    let _ = future::select(future::select_all(waits), timer).await;
}

async fn wait_on_owner(shard: &Rc<Shard>, partitions: Vec<(String, i32, i64)>, follower: bool, deadline: Instant) {
    let logs: Vec<_> = partitions
        .iter()
        .filter_map(|(topic, partition, seen)| shard.local_log(topic, *partition).ok().map(|log| (log, *seen)))
        .collect();
    let waits: Vec<_> = logs
        .iter()
        .map(|(log, seen)| {
            let watch = if follower { log.log_end_watch() } else { log.high_watermark_watch() };
            Box::pin(watch.wait_for(seen + 1))
        })
        .collect();
    let timer = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
    if waits.is_empty() {
        timer.await;
        return;
    }
    futures::pin_mut!(timer);
    let _ = future::select(future::select_all(waits), timer).await;
}

/// FetchResponse v4-v12, with record sets as file slices. Public for the criterion bench.
pub fn assemble(header: &RequestHeader, request: &FetchRequest, reads: &[PartitionRead]) -> Response {
    let version = header.api_version;
    let flexible = version >= 12;
    let read_committed = request.isolation_level == 1;
    let mut chunks = Vec::new();
    let mut out = BytesMut::with_capacity(128 + reads.len() * 64);
    out.put_i32(0); // size, filled below
    out.put_i32(header.correlation_id);
    if response_header_version(header) >= 1 {
        out.put_empty_tagged_fields();
    }
    out.put_i32(0); // throttle_time_ms
    if version >= 7 {
        out.put_i16(error::NONE);
        out.put_i32(0); // session_id: sessionless
    }
    out.put_array_len(request.topics.len(), flexible);
    let mut reads = reads.iter();
    for topic in &request.topics {
        out.put_string(&topic.topic, flexible);
        out.put_array_len(topic.partitions.len(), flexible);
        for partition in &topic.partitions {
            let fallback = PartitionRead::error(ResponseError::UnknownServerError);
            let read = reads.next().unwrap_or(&fallback);
            out.put_i32(partition.partition);
            out.put_i16(read.error_code);
            out.put_i64(read.high_watermark);
            out.put_i64(read.last_stable_offset);
            if version >= 5 {
                out.put_i64(read.log_start_offset);
            }
            // aborted_transactions: an empty list for read_committed, null otherwise.
            match (read_committed, flexible) {
                (true, _) => out.put_array_len(0, flexible),
                (false, true) => out.put_uvarint(0),
                (false, false) => out.put_i32(-1),
            }
            if version >= 11 {
                out.put_i32(-1); // preferred_read_replica
            }
            // Never null: librdkafka rejects null records in v12+ (DESIGN.md §4).
            let len = read.bytes();
            out.put_records_len(len, flexible);
            if let Some(slice) = &read.slice {
                chunks.push(Chunk::Bytes(out.split().freeze()));
                chunks.push(Chunk::File(slice.clone()));
            }
            match (flexible, read.diverging_epoch) {
                (true, Some((epoch, end_offset))) => {
                    // One tagged field: DivergingEpoch (tag 0) = epoch i32, end offset i64, no tagged fields.
                    out.put_uvarint(1);
                    out.put_uvarint(0);
                    out.put_uvarint(4 + 8 + 1);
                    out.put_i32(epoch);
                    out.put_i64(end_offset);
                    out.put_empty_tagged_fields();
                }
                (true, None) => out.put_empty_tagged_fields(),
                (false, _) => {}
            }
        }
        if flexible {
            out.put_empty_tagged_fields();
        }
    }
    if flexible {
        out.put_empty_tagged_fields();
    }
    chunks.push(Chunk::Bytes(out.freeze()));
    Response::with_size_prefix(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_slice_stays_whole_and_nothing_follows_one_that_fills_the_limit() {
        assert_eq!(plan_fit(&[0, 500, 400, 100], 300), vec![Fit::Keep, Fit::Keep, Fit::Drop, Fit::Drop]);
    }

    #[test]
    fn the_slice_that_would_pass_the_limit_is_cut_to_what_is_left_and_later_ones_dropped() {
        assert_eq!(plan_fit(&[100, 100, 200, 10], 250), vec![Fit::Keep, Fit::Keep, Fit::CutTo(50), Fit::Drop]);
        assert_eq!(plan_fit(&[400, 400, 400, 400], 1000), vec![Fit::Keep, Fit::Keep, Fit::CutTo(200), Fit::Drop]);
    }

    #[test]
    fn slices_that_fit_are_all_kept() {
        assert_eq!(plan_fit(&[100, 0, 100, 50], 250), vec![Fit::Keep; 4]);
        assert_eq!(plan_fit(&[], 250), Vec::<Fit>::new());
    }
}
