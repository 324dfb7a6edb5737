//! Produce (API 0), versions 0-9: a hand-written request parser and response encoder, so that record sets
//! stay zero-copy slices of the received frame until the owner shard appends them.
//!
//! The connection's shard parses the request and sends each partition's records to its owner shard, all
//! partitions at once. The owner checks that this broker leads the partition (NOT_LEADER_OR_FOLLOWER
//! otherwise), validates and appends in the leader's epoch (the engine checks magic, CRC, size and producer
//! sequences) and, for `acks=all`, waits until the high watermark covers the records: on disk on every
//! in-sync replica. acks=all fails with NOT_ENOUGH_REPLICAS when the ISR is below `min.insync.replicas`
//! before the append, NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it meanwhile, and
//! REQUEST_TIMED_OUT after the request's timeout.
//! `acks=0` gets no response at all. Versions 0-2 carry message formats older than v2, which are refused per
//! partition with UNSUPPORTED_FOR_MESSAGE_FORMAT.
//!
//! Before any of that, on the connection's shard: internal topics (`api::INTERNAL_TOPICS`) are written by the
//! broker alone, so a client's records for them get INVALID_TOPIC_EXCEPTION (Kafka's `ReplicaManager`); and a
//! request carrying a transactional batch is refused whole (below, [`transactional_refusal`]), since no
//! transaction coordinator exists to ever close the transaction it would open.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use futures::future::{self, Either};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;
use sluice_engine::{AppendMode, BatchError, EngineError, LeaderEpoch, Offset};

use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{is_internal_topic, versions, Api, DecodeRequest};
use crate::error::{self, ResponseError};
use crate::metrics::{self, ProduceStage};
use crate::response::Response;
use crate::shard::Shard;
use crate::wire::{finish_frame, start_frame, Reader, RequestHeader, WireResult, WriteExt};

/// One topic of a Produce request: its name and (partition, records) pairs.
pub type TopicRecords = (String, Vec<(i32, Option<Bytes>)>);

#[derive(Debug)]
pub struct ProduceRequestView {
    pub version: i16,
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<TopicRecords>,
}

impl ProduceRequestView {
    pub fn parse(mut r: Reader, version: i16) -> WireResult<Self> {
        let flexible = version >= 9;
        let transactional_id = match version {
            0..=2 => None,
            _ if flexible => r.compact_nullable_string("transactional_id")?,
            _ => r.nullable_string("transactional_id")?,
        };
        let acks = r.i16("acks")?;
        let timeout_ms = r.i32("timeout_ms")?;
        let topic_count = r.array_len("topics", flexible)?;
        // A topic takes at least its name's length, its partition count and (flexible) its tagged fields.
        let mut topics = Vec::with_capacity(r.capacity_for(topic_count, if flexible { 3 } else { 6 }));
        for _ in 0..topic_count {
            let name = if flexible { r.compact_string("topic name")? } else { r.string("topic name")? };
            let partition_count = r.array_len("partitions", flexible)?;
            // A partition takes at least its index, its records' length and (flexible) its tagged fields.
            let mut partitions = Vec::with_capacity(r.capacity_for(partition_count, if flexible { 6 } else { 8 }));
            for _ in 0..partition_count {
                let index = r.i32("partition index")?;
                let records =
                    if flexible { r.compact_nullable_bytes("records")? } else { r.nullable_bytes("records")? };
                if flexible {
                    r.skip_tagged_fields()?;
                }
                partitions.push((index, records));
            }
            if flexible {
                r.skip_tagged_fields()?;
            }
            topics.push((name, partitions));
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(ProduceRequestView { version, transactional_id, acks, timeout_ms, topics })
    }
}

/// One partition's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduced {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The records that made the batch fail (v8+ `record_errors`): their indexes among the partition's records,
    /// each with `record_error_message`. A client fails those records with the partition's error and the rest
    /// of the batch with a "different record" error of its own (librdkafka's `_INVALID_DIFFERENT_RECORD`).
    pub record_errors: Vec<i32>,
    pub record_error_message: Option<String>,
}

impl PartitionProduced {
    fn error(error: ResponseError, message: Option<String>) -> Self {
        PartitionProduced {
            error_code: error.code(),
            error_message: message,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            record_error_message: None,
        }
    }

    /// A refusal of the append. Keyless records for a compacted topic are listed one by one, as Kafka's
    /// `LogValidator` does, with its messages.
    fn refused(topic: &str, partition: i32, engine_error: &EngineError) -> Self {
        let error = error::engine_error(engine_error);
        let EngineError::Batch { source: BatchError::MissingKey { count, record_indexes }, .. } = engine_error else {
            return PartitionProduced::error(error, Some(engine_error.to_string()));
        };
        let record_message =
            format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}.");
        let shown: Vec<String> = record_indexes
            .iter()
            .take(3)
            .map(|index| format!("RecordError(batchIndex={index}, message='{record_message}')"))
            .collect();
        let message = format!(
            "One or more records have been rejected due to {count} record errors in total, and only showing the \
             first three errors at most: [{}]",
            shown.join(", ")
        );
        PartitionProduced {
            record_errors: record_indexes.iter().map(|index| i32::try_from(*index).unwrap_or(i32::MAX)).collect(),
            record_error_message: Some(record_message),
            ..PartitionProduced::error(error, Some(message))
        }
    }
}

/// Produce (API 0): see the module doc. Answers with no frame at all for `acks=0`.
pub struct Produce;

impl Api for Produce {
    const KEY: ApiKey = ApiKey::Produce;
    const VERSIONS: VersionRange = versions(0, 9);
    type Request = ProduceRequestView;
    type Response = Response;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: ProduceRequestView) -> Response {
        match produce(shard, header, request).await {
            Some(frame) => Response::Frame(frame),
            None => Response::None,
        }
    }
}

/// The hand-written parser serves every version the registry lists, v0-v2 included: their requests are
/// read to be refused per partition.
impl DecodeRequest for ProduceRequestView {
    const DECODES: VersionRange = versions(0, 9);

    fn decode(body: Bytes, version: i16) -> Result<Self, String> {
        ProduceRequestView::parse(Reader::new(body), version).map_err(|error| error.to_string())
    }
}

async fn produce(shard: &Rc<Shard>, header: &RequestHeader, request: ProduceRequestView) -> Option<Bytes> {
    let decoded = Instant::now();
    let acks = request.acks;
    let version = request.version;
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms.max(0)).unwrap_or(0));
    let refused_transactional = transactional_refusal(&request);
    let mut calls = Vec::new();
    for (topic, partitions) in &request.topics {
        // Kafka's check, once per topic: WRITE on it.
        let writable = shard.authorized(header, AclOperation::Write, ResourceType::Topic, topic);
        for (partition, records) in partitions {
            let (topic, partition, records) = (topic.clone(), *partition, records.clone());
            let early = if !matches!(acks, -1..=1) {
                Some(PartitionProduced::error(ResponseError::InvalidRequiredAcks, None))
            } else if version < 3 {
                Some(PartitionProduced::error(ResponseError::UnsupportedForMessageFormat, None))
            } else if let Some((error, message)) = &refused_transactional {
                Some(PartitionProduced::error(*error, Some((*message).to_string())))
            } else if !writable {
                Some(PartitionProduced::error(ResponseError::TopicAuthorizationFailed, None))
            } else if is_internal_topic(&topic) {
                let message = format!("cannot append to internal topic {topic}");
                Some(PartitionProduced::error(ResponseError::InvalidTopicException, Some(message)))
            } else {
                None
            };
            let owner = shard.owner(&topic, partition);
            let shard = shard.clone();
            calls.push(async move {
                match early {
                    Some(result) => result,
                    None => {
                        shard
                            .run_on(owner, move |owner| async move {
                                produce_partition(&owner, &topic, partition, records, acks, timeout, decoded).await
                            })
                            .await
                    }
                }
            });
        }
    }
    let results = future::join_all(calls).await;
    for result in &results {
        metrics::record_error(ApiKey::Produce as i16, result.error_code);
    }
    if acks == 0 {
        return None;
    }
    Some(encode_response(header, &request, &results))
}

/// Whether the request carries a transactional batch, and if so the error every partition gets. Sluice has no
/// transaction coordinator yet, so such a batch would open a transaction that no marker ever closes, and the
/// partition's last stable offset would stop there for every read_committed consumer (librdkafka's default).
/// Kafka's answers: a transactional batch in a request with no transactional id gets
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole request (`KafkaApis.handleProduceRequest` refuses it
/// before any partition is touched); with a transactional id, the broker checks with the transaction
/// coordinator that the partition was added to an ongoing transaction (KIP-890) and answers INVALID_TXN_STATE
/// when it was not, which is always the case here (InitProducerId refuses transactional ids, and
/// AddPartitionsToTxn is not served). Both are fatal to a producer, which is right: retrying cannot succeed.
pub fn transactional_refusal(request: &ProduceRequestView) -> Option<(ResponseError, &'static str)> {
    let transactional = request.topics.iter().flat_map(|(_, partitions)| partitions).any(|(_, records)| {
        let Some(mut rest) = records.as_deref() else { return false };
        while let Some(header) = sluice_engine::batch::peek_header(rest) {
            if header.is_transactional() {
                return true;
            }
            // A malformed length ends the scan; the engine refuses the batch when it validates it.
            match rest.get(header.size_bytes()..) {
                Some(after) if header.size_bytes() > sluice_engine::batch::LOG_OVERHEAD_BYTES => rest = after,
                _ => break,
            }
        }
        false
    });
    match (transactional, &request.transactional_id) {
        (false, _) => None,
        (true, None) => Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "a transactional batch needs a transactional id; transactions are not supported by this broker yet",
        )),
        (true, Some(_)) => Some((
            ResponseError::InvalidTxnState,
            "the partition is not in an ongoing transaction: transactions are not supported by this broker yet",
        )),
    }
}

async fn produce_partition(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    acks: i16,
    timeout: Duration,
    decoded: Instant,
) -> PartitionProduced {
    let appending = Instant::now();
    metrics::record_produce_stage(ProduceStage::Queue, appending - decoded);
    let (log, leader) = match shard.leader_log(topic, partition) {
        Ok(found) => found,
        Err(error) => return PartitionProduced::error(error, None),
    };
    let records = match records {
        Some(records) if !records.is_empty() => records,
        _ => return PartitionProduced::error(ResponseError::CorruptMessage, Some("empty record set".into())),
    };
    // acks=all needs min.insync.replicas in the (committed) ISR before anything is appended.
    if acks == -1 && leader.isr_len() < leader.min_isr() {
        let message = format!(
            "the ISR has {} of the {} replicas min.insync.replicas asks for",
            leader.isr_len(),
            leader.min_isr()
        );
        return PartitionProduced::error(ResponseError::NotEnoughReplicas, Some(message));
    }
    let mode = AppendMode::Client { leader_epoch: LeaderEpoch(leader.leader_epoch()) };
    let info = match log.append(records.to_vec(), mode).await {
        Ok(info) => info,
        Err(engine_error) => {
            tracing::debug!(topic, partition, error = %engine_error, "produce refused");
            return PartitionProduced::refused(topic, partition, &engine_error);
        }
    };
    let appended = Instant::now();
    metrics::record_produce_stage(ProduceStage::Append, appended - appending);
    if !info.duplicate {
        let records_appended = u64::try_from(info.last_offset.0 - info.base_offset.0 + 1).unwrap_or(0);
        metrics::record_produced(topic, records.len() as u64, records_appended);
    }
    if acks == -1 {
        // The high watermark covers the records once every in-sync replica has them on disk.
        let target = info.last_offset.next();
        // The high watermark never passes the leader's durable offset, so waiting for the latter first changes
        // nothing but splits the wait into its two stages.
        let replicated = async {
            log.wait_durable(target).await.map_err(|_| ())?;
            let durable = Instant::now();
            metrics::record_produce_stage(ProduceStage::Fsync, durable - appended);
            if !unsafe_ack_on_leader_append() {
                log.high_watermark_watch().wait_for(target.0).await.map_err(|_| ())?;
                metrics::record_produce_stage(ProduceStage::Replication, durable.elapsed());
            }
            Ok::<(), ()>(())
        };
        let timer = glommio::timer::sleep(timeout);
        let resigned = leader.resigned();
        futures::pin_mut!(replicated);
        futures::pin_mut!(timer);
        futures::pin_mut!(resigned);
        match future::select(future::select(replicated, resigned), timer).await {
            Either::Left((Either::Left((Ok(()), _)), _)) => {}
            // The records are in the log (and may be on the followers already), but this replica could not make
            // them durable. Whether they commit is unknown here: KAFKA_STORAGE_ERROR would tell librdkafka "not
            // persisted", and it would renumber the retry under a bumped epoch, writing them twice if the new
            // leader had them. REQUEST_TIMED_OUT has the retry keep its sequence, so it is answered as a
            // duplicate where the records survived.
            Either::Left((Either::Left((Err(_), _)), _)) => {
                let reason = log.poisoned().unwrap_or("the log could not be made durable");
                let message = format!("the write was appended but not made durable ({reason}): its outcome is unknown");
                return PartitionProduced::error(ResponseError::RequestTimedOut, Some(message));
            }
            Either::Left((Either::Right(_), _)) => {}
            Either::Right(_) => return PartitionProduced::error(ResponseError::RequestTimedOut, None),
        }
        // Checked even when the offset was reached: a deposed leader's high watermark is its new leader's, which
        // can pass these offsets with other records (the write was truncated away). Whether the write committed
        // is unknown here, and the answer says so: REQUEST_TIMED_OUT, which clients retry with the same producer
        // sequence (the new leader then answers a committed write as a duplicate, with its offset). Kafka answers
        // NOT_LEADER_OR_FOLLOWER, which librdkafka takes for "not persisted": it renumbers the retry under a
        // bumped producer epoch, and a write that had committed is written twice (the fault run's seed 2002).
        if leader.has_resigned() {
            let message = "leadership moved while the write waited for the in-sync replicas: its outcome is unknown";
            return PartitionProduced::error(ResponseError::RequestTimedOut, Some(message.into()));
        }
        if leader.maximal_isr_len() < leader.min_isr() {
            return PartitionProduced::error(ResponseError::NotEnoughReplicasAfterAppend, None);
        }
    }
    PartitionProduced {
        error_code: error::NONE,
        error_message: None,
        base_offset: info.base_offset.0,
        log_append_time_ms: info.log_append_time_ms,
        log_start_offset: info.log_start_offset.0.max(Offset::ZERO.0),
        record_errors: Vec::new(),
        record_error_message: None,
    }
}

/// A deliberately broken broker, for proving that the fault tests' checker catches lost writes: with the
/// environment variable `SLUICE_UNSAFE_ACK_ON_LEADER_APPEND=1`, acks=all is answered once the leader alone has
/// the records on disk, without waiting for the followers. Never set it anywhere else; `sluice serve` warns.
pub fn unsafe_ack_on_leader_append() -> bool {
    static UNSAFE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNSAFE.get_or_init(|| std::env::var("SLUICE_UNSAFE_ACK_ON_LEADER_APPEND").is_ok_and(|v| v == "1"))
}

/// ProduceResponse v0-v9.
pub fn encode_response(header: &RequestHeader, request: &ProduceRequestView, results: &[PartitionProduced]) -> Bytes {
    let version = request.version;
    let flexible = version >= 9;
    let mut out = start_frame(header, 64 + results.len() * 48);
    out.put_array_len(request.topics.len(), flexible);
    let mut results = results.iter();
    for (topic, partitions) in &request.topics {
        out.put_string(topic, flexible);
        out.put_array_len(partitions.len(), flexible);
        for (index, _) in partitions {
            let Some(result) = results.next() else { break };
            out.put_i32(*index);
            out.put_i16(result.error_code);
            out.put_i64(result.base_offset);
            if version >= 2 {
                out.put_i64(result.log_append_time_ms);
            }
            if version >= 5 {
                out.put_i64(result.log_start_offset);
            }
            if version >= 8 {
                out.put_array_len(result.record_errors.len(), flexible);
                for index in &result.record_errors {
                    out.put_i32(*index);
                    match (&result.record_error_message, flexible) {
                        (Some(message), _) => out.put_string(message, flexible),
                        (None, true) => out.put_uvarint(0),
                        (None, false) => out.put_i16(-1),
                    }
                    if flexible {
                        out.put_empty_tagged_fields();
                    }
                }
                match (&result.error_message, flexible) {
                    (Some(message), _) => out.put_string(message, flexible),
                    (None, true) => out.put_uvarint(0),
                    (None, false) => out.put_i16(-1),
                }
            }
            if flexible {
                out.put_empty_tagged_fields();
            }
        }
        if flexible {
            out.put_empty_tagged_fields();
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle_time_ms
    }
    if flexible {
        out.put_empty_tagged_fields();
    }
    finish_frame(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn parses_what_kafka_protocol_encodes_for_every_version_from_3() {
        for version in 3..=9 {
            let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(1500).with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("orders")))
                    .with_partition_data(vec![
                        PartitionProduceData::default().with_index(2).with_records(Some(Bytes::from_static(b"abc"))),
                        PartitionProduceData::default().with_index(5).with_records(None),
                    ]),
            ]);
            let mut buf = bytes::BytesMut::new();
            request.encode(&mut buf, version).unwrap();
            let view = ProduceRequestView::parse(Reader::new(buf.freeze()), version).unwrap();
            assert_eq!(view.acks, -1);
            assert_eq!(view.timeout_ms, 1500);
            assert_eq!(view.topics.len(), 1);
            assert_eq!(view.topics[0].0, "orders");
            assert_eq!(view.topics[0].1, vec![(2, Some(Bytes::from_static(b"abc"))), (5, None)]);
        }
    }

    #[test]
    fn responses_decode_with_kafka_protocol() {
        for version in 3..=9 {
            let request = ProduceRequestView {
                version,
                transactional_id: None,
                acks: 1,
                timeout_ms: 0,
                topics: vec![("t".into(), vec![(0, None), (1, None), (2, None)])],
            };
            let keyless = EngineError::Batch {
                partition: "t-2".into(),
                position: 0,
                source: BatchError::MissingKey { count: 4, record_indexes: vec![0, 3, 5, 9] },
            };
            let results = vec![
                PartitionProduced {
                    error_code: 0,
                    error_message: None,
                    base_offset: 42,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                    record_errors: Vec::new(),
                    record_error_message: None,
                },
                PartitionProduced::error(ResponseError::MessageTooLarge, Some("too big".into())),
                PartitionProduced::refused("t", 2, &keyless),
            ];
            let header = RequestHeader {
                api_key: 0,
                api_version: version,
                correlation_id: 9,
                client_id: None,
                client_host: String::new(),
                principal: None,
            };
            let mut frame = encode_response(&header, &request, &results);
            let size = bytes::Buf::get_i32(&mut frame);
            assert_eq!(size as usize, frame.len());
            assert_eq!(bytes::Buf::get_i32(&mut frame), 9);
            if version >= 9 {
                bytes::Buf::get_u8(&mut frame);
            }
            let decoded = <ProduceResponse as Decodable>::decode(&mut frame, version).unwrap();
            let partitions = &decoded.responses[0].partition_responses;
            assert_eq!(partitions[0].base_offset, 42);
            assert_eq!(partitions[1].error_code, ResponseError::MessageTooLarge.code());
            assert_eq!(partitions[2].error_code, ResponseError::InvalidRecord.code());
            if version >= 8 {
                // Every keyless record is listed, with Kafka's message; the partition's message shows three.
                let listed: Vec<i32> = partitions[2].record_errors.iter().map(|e| e.batch_index).collect();
                assert_eq!(listed, vec![0, 3, 5, 9]);
                let message = partitions[2].record_errors[1].batch_index_error_message.as_ref().unwrap();
                assert_eq!(
                    message.as_str(),
                    "Compacted topic cannot accept message without key in topic partition t-2."
                );
                let summary = partitions[2].error_message.as_ref().unwrap().to_string();
                assert!(summary.contains("due to 4 record errors"), "{summary}");
                assert!(summary.contains("batchIndex=5") && !summary.contains("batchIndex=9"), "{summary}");
                assert!(partitions[1].record_errors.is_empty());
            }
            assert!(frame.is_empty());
        }
    }

    /// A Produce v9 request for one partition carrying `batches`, parsed as the broker parses it.
    fn view(transactional_id: Option<&'static str>, batches: Vec<u8>) -> ProduceRequestView {
        let request = ProduceRequest::default()
            .with_transactional_id(
                transactional_id.map(|id| kafka_protocol::messages::TransactionalId(StrBytes::from_static_str(id))),
            )
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![PartitionProduceData::default().with_records(Some(Bytes::from(batches)))])]);
        let mut buf = bytes::BytesMut::new();
        request.encode(&mut buf, 9).unwrap();
        ProduceRequestView::parse(Reader::new(buf.freeze()), 9).unwrap()
    }

    fn one_batch(builder: sluice_engine::batch::BatchBuilder) -> Vec<u8> {
        let mut builder = builder;
        builder.push(&sluice_engine::batch::RecordSpec { key: None, value: Some(b"v"), headers: &[], timestamp_ms: 1 });
        builder.finish()
    }

    #[test]
    fn transactional_batches_are_refused_with_kafkas_codes() {
        use sluice_engine::batch::BatchBuilder;
        let plain = one_batch(BatchBuilder::new());
        let idempotent = one_batch(BatchBuilder::new().producer(7, 0, 0));
        let transactional = one_batch(BatchBuilder::new().producer(7, 0, 0).transactional());
        assert_eq!(transactional_refusal(&view(None, plain.clone())), None);
        assert_eq!(transactional_refusal(&view(None, idempotent.clone())), None);
        let refused = transactional_refusal(&view(None, transactional.clone())).unwrap();
        assert_eq!(refused.0, ResponseError::TransactionalIdAuthorizationFailed);
        let refused = transactional_refusal(&view(Some("tx"), transactional.clone())).unwrap();
        assert_eq!(refused.0, ResponseError::InvalidTxnState);
        // Found behind another batch too, and a malformed length ends the scan without a panic.
        let mut two = plain.clone();
        two.extend_from_slice(&transactional);
        assert!(transactional_refusal(&view(None, two)).is_some());
        let mut broken = plain;
        broken[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        broken.extend_from_slice(&transactional);
        assert_eq!(transactional_refusal(&view(None, broken)), None);
        assert_eq!(transactional_refusal(&view(None, transactional[..20].to_vec())), None);
    }

    #[test]
    fn truncated_requests_are_errors_not_panics() {
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(
                vec![PartitionProduceData::default().with_records(Some(Bytes::from_static(b"xyz")))],
            )]);
        for version in [3, 9] {
            let mut buf = bytes::BytesMut::new();
            request.encode(&mut buf, version).unwrap();
            let full = buf.freeze();
            for cut in 0..full.len() {
                assert!(ProduceRequestView::parse(Reader::new(full.slice(..cut)), version).is_err());
            }
        }
    }
}
