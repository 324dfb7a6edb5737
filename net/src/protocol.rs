//! Framing, request headers, the table of supported APIs, request decoding and response encoding.
//!
//! Runs on the shard that owns the connection. A frame is a 4-byte size and that many bytes; the size is
//! checked against `socket.request.max.bytes` before any byte of the body is buffered, and the buffer grows only
//! as bytes arrive. Decoding never trusts a length field for an allocation (kafka-protocol is patched for
//! this; see `third_party/kafka-protocol/PATCHES.md`), and anything that does not decode closes the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{self, ApiKey};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::ConnectionError;
use crate::produce::ProduceRequestView;
use crate::wire::{Reader, WireError};

/// Every API Sluice serves, with the versions it implements. ApiVersions advertises exactly this table.
/// Produce starts at v0 because librdkafka enables compression only when it does (DESIGN.md §4); v0-v2
/// requests carry old message formats and are refused per partition.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

pub fn supported_versions(api_key: i16) -> Option<(ApiKey, i16, i16)> {
    SUPPORTED_APIS.iter().copied().find(|(key, _, _)| *key as i16 == api_key)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The peer's address, filled in by the connection (not on the wire).
    pub client_host: String,
}

/// Parses a request header. Header v1 (client id) for every request; v2 adds tagged fields for flexible
/// versions of supported APIs. Unknown keys and versions are parsed as v1, which is enough to answer them.
pub fn parse_header(reader: &mut Reader) -> Result<RequestHeader, WireError> {
    let api_key = reader.i16("api_key")?;
    let api_version = reader.i16("api_version")?;
    let correlation_id = reader.i32("correlation_id")?;
    let client_id = reader.nullable_string("client_id")?;
    if let Some((key, min, max)) = supported_versions(api_key) {
        if (min..=max).contains(&api_version) && key.request_header_version(api_version) >= 2 {
            reader.skip_tagged_fields()?;
        }
    }
    Ok(RequestHeader { api_key, api_version, correlation_id, client_id, client_host: String::new() })
}

/// A decoded request of a supported API and version.
#[derive(Debug)]
pub enum Request {
    ApiVersions(messages::ApiVersionsRequest),
    Metadata(messages::MetadataRequest),
    Produce(ProduceRequestView),
    Fetch(messages::FetchRequest),
    ListOffsets(messages::ListOffsetsRequest),
    OffsetForLeaderEpoch(messages::OffsetForLeaderEpochRequest),
    InitProducerId(messages::InitProducerIdRequest),
    CreateTopics(messages::CreateTopicsRequest),
    DeleteTopics(messages::DeleteTopicsRequest),
    CreatePartitions(messages::CreatePartitionsRequest),
    DescribeConfigs(messages::DescribeConfigsRequest),
    AlterConfigs(messages::AlterConfigsRequest),
    IncrementalAlterConfigs(messages::IncrementalAlterConfigsRequest),
    DescribeCluster(messages::DescribeClusterRequest),
    DeleteRecords(messages::DeleteRecordsRequest),
    FindCoordinator(messages::FindCoordinatorRequest),
    JoinGroup(messages::JoinGroupRequest),
    SyncGroup(messages::SyncGroupRequest),
    Heartbeat(messages::HeartbeatRequest),
    LeaveGroup(messages::LeaveGroupRequest),
    OffsetCommit(messages::OffsetCommitRequest),
    OffsetFetch(messages::OffsetFetchRequest),
    DescribeGroups(messages::DescribeGroupsRequest),
    ListGroups(messages::ListGroupsRequest),
    DeleteGroups(messages::DeleteGroupsRequest),
    OffsetDelete(messages::OffsetDeleteRequest),
    ConsumerGroupHeartbeat(messages::ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(messages::ConsumerGroupDescribeRequest),
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Request(RequestHeader, Box<Request>),
    /// A well-formed header for an API or version Sluice does not serve: answer UNSUPPORTED_VERSION.
    Unsupported(RequestHeader),
}

fn decode_body<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|error| error.to_string())
}

/// Decodes one frame (without its size prefix). An error means the bytes are malformed.
pub fn decode_frame(frame: Bytes) -> Result<Decoded, ConnectionError> {
    let mut reader = Reader::new(frame);
    let header = parse_header(&mut reader).map_err(|error| ConnectionError::Malformed {
        api_key: -1,
        api_version: -1,
        reason: error.to_string(),
    })?;
    let Some((api, min, max)) = supported_versions(header.api_key) else {
        return Ok(Decoded::Unsupported(header));
    };
    let version = header.api_version;
    if !(min..=max).contains(&version) {
        return Ok(Decoded::Unsupported(header));
    }
    let malformed =
        |reason: String| ConnectionError::Malformed { api_key: header.api_key, api_version: version, reason };
    let mut body = reader.into_rest();
    let request = match api {
        ApiKey::ApiVersions => Request::ApiVersions(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::Metadata => Request::Metadata(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::Produce => Request::Produce(
            ProduceRequestView::parse(Reader::new(body), version).map_err(|error| malformed(error.to_string()))?,
        ),
        ApiKey::Fetch => Request::Fetch(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::ListOffsets => Request::ListOffsets(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::OffsetForLeaderEpoch => {
            Request::OffsetForLeaderEpoch(decode_body(&mut body, version).map_err(malformed)?)
        }
        ApiKey::InitProducerId => Request::InitProducerId(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::CreateTopics => Request::CreateTopics(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::CreatePartitions => Request::CreatePartitions(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::AlterConfigs => Request::AlterConfigs(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::IncrementalAlterConfigs => {
            Request::IncrementalAlterConfigs(decode_body(&mut body, version).map_err(malformed)?)
        }
        ApiKey::DescribeCluster => Request::DescribeCluster(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::DeleteRecords => Request::DeleteRecords(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::FindCoordinator => Request::FindCoordinator(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::JoinGroup => Request::JoinGroup(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::SyncGroup => Request::SyncGroup(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::Heartbeat => Request::Heartbeat(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::ListGroups => Request::ListGroups(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::DeleteGroups => Request::DeleteGroups(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::OffsetDelete => Request::OffsetDelete(decode_body(&mut body, version).map_err(malformed)?),
        ApiKey::ConsumerGroupHeartbeat => {
            Request::ConsumerGroupHeartbeat(decode_body(&mut body, version).map_err(malformed)?)
        }
        ApiKey::ConsumerGroupDescribe => {
            Request::ConsumerGroupDescribe(decode_body(&mut body, version).map_err(malformed)?)
        }
        other => return Err(malformed(format!("{other:?} is in the table but has no decoder"))),
    };
    Ok(Decoded::Request(header, Box::new(request)))
}

/// Response header version: ApiVersions always uses v0 (so a client can read the error whatever version it
/// tried); otherwise v1 (tagged fields) for flexible versions.
pub fn response_header_version(header: &RequestHeader) -> i16 {
    match supported_versions(header.api_key) {
        Some((ApiKey::ApiVersions, _, _)) | None => 0,
        Some((api, _, _)) => api.response_header_version(header.api_version),
    }
}

/// Writes the size placeholder and response header; [`finish_frame`] fills the size.
pub fn start_frame(header: &RequestHeader, capacity: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(capacity + 16);
    out.put_i32(0);
    out.put_i32(header.correlation_id);
    if response_header_version(header) >= 1 {
        out.put_u8(0);
    }
    out
}

pub fn finish_frame(mut frame: BytesMut) -> Bytes {
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame.freeze()
}

/// Encodes a whole response frame for a kafka-protocol message.
pub fn encode_response<M: Encodable>(header: &RequestHeader, message: &M) -> Bytes {
    let size = message.compute_size(header.api_version).unwrap_or(256);
    let mut frame = start_frame(header, size);
    if let Err(error) = message.encode(&mut frame, header.api_version) {
        // Only a response built with a field the version cannot carry fails here: a bug in a handler.
        tracing::error!(api_key = header.api_key, version = header.api_version, %error, "response encoding failed");
    }
    finish_frame(frame)
}

/// The connection's receive buffer: whole frames are split off as zero-copy `Bytes`.
pub struct FrameBuffer {
    buf: BytesMut,
    limit: usize,
}

/// Bytes read per receive when no frame size is known yet.
pub const READ_CHUNK_BYTES: usize = 64 << 10;

impl FrameBuffer {
    pub fn new(limit: usize) -> Self {
        FrameBuffer { buf: BytesMut::with_capacity(READ_CHUNK_BYTES), limit }
    }

    /// The next whole frame (body only), if one has arrived. A declared size beyond the limit or below zero
    /// is an error before anything is buffered for it.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let declared = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if declared < 0 || declared as usize > self.limit {
            return Err(ConnectionError::FrameTooLarge { declared: i64::from(declared), limit: self.limit });
        }
        let size = declared as usize;
        if self.buf.len() < 4 + size {
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// Makes room for the next receive and returns the writable tail. It grows by at most
    /// [`READ_CHUNK_BYTES`] beyond what has been received, whatever size a frame declares.
    pub fn read_space(&mut self) -> &mut [u8] {
        let filled = self.buf.len();
        self.buf.resize(filled + READ_CHUNK_BYTES, 0);
        &mut self.buf[filled..]
    }

    /// Keeps `received` bytes of the space handed out by [`FrameBuffer::read_space`].
    pub fn commit_read(&mut self, received: usize) {
        let keep = self.buf.len() - READ_CHUNK_BYTES + received;
        self.buf.truncate(keep);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_split_and_oversize_is_refused_before_buffering() {
        let mut frames = FrameBuffer::new(1024);
        let space = frames.read_space();
        space[..10].copy_from_slice(&[0, 0, 0, 2, 1, 2, 0, 0, 0, 1]);
        frames.commit_read(10);
        assert_eq!(frames.next_frame().unwrap().unwrap().as_ref(), &[1, 2]);
        assert!(frames.next_frame().unwrap().is_none());
        let space = frames.read_space();
        space[0] = 9;
        frames.commit_read(1);
        assert_eq!(frames.next_frame().unwrap().unwrap().as_ref(), &[9]);
        let space = frames.read_space();
        space[..4].copy_from_slice(&0x7fff_ffffi32.to_be_bytes());
        frames.commit_read(4);
        assert!(matches!(frames.next_frame(), Err(ConnectionError::FrameTooLarge { .. })));
        assert!(frames.capacity() < 1 << 20);
    }

    #[test]
    fn the_cve_metadata_frame_is_malformed_not_a_huge_allocation() {
        // 03 00 00 03 3c 0c 00 b6: a Metadata v3 header cut short.
        let frame = Bytes::from_static(&[0x00, 0x03, 0x00, 0x03, 0x3c, 0x0c, 0x00, 0xb6]);
        assert!(decode_frame(frame).is_err());
    }

    #[test]
    fn unknown_keys_and_versions_are_unsupported_not_malformed() {
        let frame = Bytes::from_static(&[0x03, 0xe7, 0x00, 0x00, 0, 0, 0, 7, 0xff, 0xff]);
        assert!(matches!(decode_frame(frame).unwrap(), Decoded::Unsupported(h) if h.correlation_id == 7));
        let frame = Bytes::from_static(&[0x00, 0x03, 0x00, 0x63, 0, 0, 0, 8, 0xff, 0xff]);
        assert!(matches!(decode_frame(frame).unwrap(), Decoded::Unsupported(_)));
    }
}
