//! Follower fetches in Kafka's Fetch protocol: [`ReplicaFetchClient`] implements
//! [`sluice_replication::replica::FetchTransport`] for one shard.
//!
//! One connection per leader broker, to the address the leader registered (the inter-broker listener),
//! with one request in flight (a shard has one fetcher per leader). Requests are Fetch v12 with
//! `replica_id` set to this node, which makes the leader read up to its log end and check leader epochs and
//! divergence; the broker epoch rides in a tagged field ([`BROKER_EPOCH_TAG`]) so that the leader can
//! refuse a stale incarnation. Responses are bounded: a frame larger than the request's `max_bytes` plus
//! overhead closes the connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition as KafkaPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest as KafkaFetch, FetchResponse as KafkaResponse, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_engine::TopicPartition;
use sluice_replication::metadata::{NodeId, SharedImage};
use sluice_replication::replica::{FetchRequest, FetchResponse, FetchTransport, FetchedPartition};
use sluice_replication::transport::{LocalFuture, TransportError};

use crate::error::replica_error_from_code;

/// The Fetch version followers send.
pub const REPLICA_FETCH_VERSION: i16 = 12;
/// A tagged field of the Fetch request carrying the follower's broker epoch (Kafka's v15 `ReplicaState`).
pub const BROKER_EPOCH_TAG: i32 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Beyond the data a response may carry: headers of every partition.
const RESPONSE_OVERHEAD_BYTES: usize = 4 << 20;

struct Connection {
    reader: ReadHalf<TcpStream>,
    writer: WriteHalf<TcpStream>,
    next_correlation: i32,
}

pub struct ReplicaFetchClient {
    node_id: NodeId,
    /// The leader's registered address, from this shard's image.
    image: Rc<dyn Fn() -> SharedImage>,
    connections: RefCell<HashMap<NodeId, Connection>>,
}

impl ReplicaFetchClient {
    pub fn new(node_id: NodeId, image: Rc<dyn Fn() -> SharedImage>) -> Rc<ReplicaFetchClient> {
        Rc::new(ReplicaFetchClient { node_id, image, connections: RefCell::new(HashMap::new()) })
    }

    fn address(&self, leader: NodeId) -> Result<SocketAddr, TransportError> {
        let image = (self.image)();
        let broker = image.brokers.get(&leader).ok_or(TransportError::UnknownPeer { node: leader })?;
        (broker.host.as_str(), u16::try_from(broker.port).unwrap_or(0))
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| TransportError::Unreachable {
                node: leader,
                reason: format!("cannot resolve {}", broker.host),
            })
    }

    async fn exchange(&self, leader: NodeId, request: &FetchRequest) -> Result<FetchResponse, TransportError> {
        let existing = self.connections.borrow_mut().remove(&leader);
        let mut connection = match existing {
            Some(connection) => connection,
            None => {
                let addr = self.address(leader)?;
                let stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| TransportError::Unreachable { node: leader, reason: e.to_string() })?;
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.split();
                Connection { reader, writer, next_correlation: 0 }
            }
        };
        let correlation = connection.next_correlation;
        connection.next_correlation = correlation.wrapping_add(1);
        let frame = encode_request(self.node_id, correlation, request)
            .map_err(|reason| TransportError::Malformed { node: leader, reason })?;
        let io = |e: std::io::Error| TransportError::Unreachable { node: leader, reason: e.to_string() };
        connection.writer.write_all(&frame).await.map_err(io)?;
        connection.writer.flush().await.map_err(io)?;
        let mut size = [0u8; 4];
        connection.reader.read_exact(&mut size).await.map_err(io)?;
        let size = i32::from_be_bytes(size);
        let limit = usize::try_from(request.max_bytes).unwrap_or(0) + RESPONSE_OVERHEAD_BYTES;
        let size = usize::try_from(size).ok().filter(|s| *s <= limit).ok_or_else(|| TransportError::Malformed {
            node: leader,
            reason: format!("response of {size} bytes exceeds the {limit}-byte bound"),
        })?;
        let mut body = BytesMut::new();
        while body.len() < size {
            let start = body.len();
            body.resize(start + (size - start).min(1 << 20), 0);
            connection.reader.read_exact(&mut body[start..]).await.map_err(io)?;
        }
        let mut body = body.freeze();
        let malformed = |reason: String| TransportError::Malformed { node: leader, reason };
        if body.len() < 5 || body.get_i32() != correlation {
            return Err(malformed("response correlation id does not match".into()));
        }
        // Response header v1: tagged fields.
        let tagged = body.get_u8();
        if tagged != 0 {
            return Err(malformed("unexpected tagged fields in the response header".into()));
        }
        let response = KafkaResponse::decode(&mut body, REPLICA_FETCH_VERSION).map_err(|e| malformed(e.to_string()))?;
        self.connections.borrow_mut().insert(leader, connection);
        Ok(decode_response(response))
    }
}

fn encode_request(node_id: NodeId, correlation: i32, request: &FetchRequest) -> Result<Bytes, String> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for partition in &request.partitions {
        let fetch = KafkaPartition::default()
            .with_partition(partition.tp.partition)
            .with_current_leader_epoch(partition.current_leader_epoch)
            .with_fetch_offset(partition.fetch_offset)
            .with_last_fetched_epoch(partition.last_fetched_epoch)
            .with_log_start_offset(partition.log_start_offset)
            .with_partition_max_bytes(partition.max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == partition.tp.topic) {
            Some(topic) => topic.partitions.push(fetch),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(crate::handlers::api::topic_name(&partition.tp.topic))
                    .with_partitions(vec![fetch]),
            ),
        }
    }
    let mut fetch = KafkaFetch::default()
        .with_replica_id(BrokerId(node_id))
        .with_max_wait_ms(request.max_wait_ms)
        .with_min_bytes(request.min_bytes)
        .with_max_bytes(request.max_bytes)
        .with_topics(topics);
    fetch.unknown_tagged_fields.insert(BROKER_EPOCH_TAG, Bytes::copy_from_slice(&request.broker_epoch.to_be_bytes()));
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(REPLICA_FETCH_VERSION)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(format!("sluice-replica-{node_id}"))));
    let mut out = BytesMut::with_capacity(256 + request.partitions.len() * 48);
    out.put_i32(0);
    let header_version = ApiKey::Fetch.request_header_version(REPLICA_FETCH_VERSION);
    header.encode(&mut out, header_version).map_err(|e| e.to_string())?;
    fetch.encode(&mut out, REPLICA_FETCH_VERSION).map_err(|e| e.to_string())?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

fn decode_response(response: KafkaResponse) -> FetchResponse {
    let mut partitions = Vec::new();
    for topic in response.responses {
        let name = topic.topic.0.to_string();
        for data in topic.partitions {
            let error = (data.error_code != 0).then(|| replica_error_from_code(data.error_code));
            let diverging = (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0)
                .then_some((data.diverging_epoch.epoch, data.diverging_epoch.end_offset));
            partitions.push(FetchedPartition {
                tp: TopicPartition::new(name.clone(), data.partition_index),
                error,
                high_watermark: data.high_watermark,
                log_start_offset: data.log_start_offset,
                diverging_epoch: diverging,
                records: data.records.unwrap_or_default(),
            });
        }
    }
    FetchResponse { partitions }
}

impl FetchTransport for ReplicaFetchClient {
    fn fetch(&self, leader: NodeId, request: FetchRequest) -> LocalFuture<'_, Result<FetchResponse, TransportError>> {
        Box::pin(async move {
            let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)) + Duration::from_secs(10);
            let exchange = self.exchange(leader, &request);
            let timer = glommio::timer::sleep(wait);
            futures::pin_mut!(exchange);
            futures::pin_mut!(timer);
            match futures::future::select(exchange, timer).await {
                futures::future::Either::Left((result, _)) => result,
                futures::future::Either::Right(_) => {
                    // The connection is in an unknown state: drop it.
                    self.connections.borrow_mut().remove(&leader);
                    Err(TransportError::TimedOut { node: leader, timeout_ms: wait.as_millis() as u64 })
                }
            }
        })
    }
}
