//! A small blocking Kafka client: what `sluice topic|produce|consume` need, and the base the load generator
//! builds on. It speaks to any Kafka-compatible broker: versions are negotiated with ApiVersions, messages
//! are encoded with kafka-protocol, record batches are built with the engine's builder and decoded with
//! kafka-protocol (all four codecs).
//!
//! It sends every request to the bootstrap broker, which is right for a single broker; routing to partition
//! leaders comes with replication.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};

/// Client errors, phrased for a person at a terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach broker at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {address} failed: {source}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the broker at {address} does not support {api:?} (versions {client_min}-{client_max} wanted)")]
    Unsupported { address: String, api: ApiKey, client_min: i16, client_max: i16 },
    #[error("could not encode or decode {api:?}: {reason}")]
    Codec { api: ApiKey, reason: String },
    #[error("{0}")]
    Kafka(String),
}

pub type ClientResult<T> = Result<T, ClientError>;

/// Largest response accepted.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

pub struct Client {
    address: String,
    stream: TcpStream,
    correlation_id: i32,
    versions: Vec<(i16, i16, i16)>,
}

impl Client {
    /// Connects and negotiates API versions.
    pub fn connect(address: &str, timeout: Duration) -> ClientResult<Client> {
        let connect_error = |source| ClientError::Connect { address: address.to_string(), source };
        let addrs: Vec<_> = address.to_socket_addrs().map_err(connect_error)?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "address resolved to nothing");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(error) => last = error,
            }
        }
        let stream = stream.ok_or_else(|| connect_error(last))?;
        let _ = stream.set_nodelay(true);
        let mut client = Client { address: address.to_string(), stream, correlation_id: 0, versions: Vec::new() };
        let response: ApiVersionsResponse =
            client.send_with_version(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?;
        if response.error_code != 0 {
            return Err(ClientError::Kafka(format!("ApiVersions failed with error {}", response.error_code)));
        }
        client.versions = response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        Ok(client)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The highest version both sides support for a request type, and no higher than the last version that
    /// names topics where this client's requests name them (`names_topics_until`).
    pub fn version_for<Req: Message>(&self, api: ApiKey) -> ClientResult<i16> {
        let client_min = Req::VERSIONS.min;
        let client_max = names_topics_until(api).map_or(Req::VERSIONS.max, |last| last.min(Req::VERSIONS.max));
        negotiate(&self.versions, api, client_min, client_max).ok_or(ClientError::Unsupported {
            address: self.address.clone(),
            api,
            client_min,
            client_max,
        })
    }

    /// Sends a request at the negotiated version and decodes the response.
    pub fn send<Req, Resp>(&mut self, api: ApiKey, request: &Req) -> ClientResult<(i16, Resp)>
    where
        Req: Encodable + Message + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let version = self.version_for::<Req>(api)?;
        Ok((version, self.send_with_version(api, version, request)?))
    }

    /// Sends a request at an explicit version.
    pub fn send_with_version<Req, Resp>(&mut self, api: ApiKey, version: i16, request: &Req) -> ClientResult<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let frame = self.encode_request(api, version, request)?;
        self.write_frame(&frame)?;
        let mut body = self.read_frame()?;
        let header_version = if api == ApiKey::ApiVersions { 0 } else { Resp::header_version(version) };
        let codec = |reason: String| ClientError::Codec { api, reason };
        let _header = kafka_protocol::messages::ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| codec(e.to_string()))?;
        Resp::decode(&mut body, version).map_err(|e| codec(e.to_string()))
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send_oneway<Req: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> ClientResult<()> {
        let frame = self.encode_request(api, version, request)?;
        self.write_frame(&frame)
    }

    /// Encodes a whole request frame (size prefix, header, body) with the next correlation id.
    pub fn encode_request<Req: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> ClientResult<Bytes> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-cli")));
        let codec = |reason: String| ClientError::Codec { api, reason };
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header.encode(&mut frame, Req::header_version(version)).map_err(|e| codec(e.to_string()))?;
        request.encode(&mut frame, version).map_err(|e| codec(e.to_string()))?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok(frame.freeze())
    }

    fn io_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Io { address: self.address.clone(), source }
    }

    fn write_frame(&mut self, frame: &[u8]) -> ClientResult<()> {
        self.stream.write_all(frame).map_err(|e| self.io_error(e))
    }

    fn read_frame(&mut self) -> ClientResult<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| self.io_error(e))?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_RESPONSE_BYTES {
            return Err(ClientError::Kafka(format!("response of {size} bytes from {} is out of bounds", self.address)));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body).map_err(|e| self.io_error(e))?;
        let mut body = Bytes::from(body);
        if body.remaining() < 4 {
            return Err(ClientError::Kafka("response shorter than its header".into()));
        }
        Ok(body.split_off(0))
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        let _ = self.stream.set_read_timeout(timeout);
    }

    /// Splits the connection for pipelining: one side writes pre-encoded frames, the other reads responses
    /// in order. Used by the load generator.
    pub fn into_pipeline(self) -> ClientResult<(PipelineWriter, PipelineReader)> {
        let reader = self.stream.try_clone().map_err(|e| self.io_error(e))?;
        let address = self.address.clone();
        Ok((
            PipelineWriter { stream: self.stream, address: address.clone() },
            PipelineReader { stream: reader, address },
        ))
    }
}

/// The writing half of a pipelined connection.
pub struct PipelineWriter {
    stream: TcpStream,
    address: String,
}

impl PipelineWriter {
    pub fn write_frame(&mut self, frame: &[u8]) -> ClientResult<()> {
        self.stream.write_all(frame).map_err(|source| ClientError::Io { address: self.address.clone(), source })
    }

    /// Writes one frame given in parts, with vectored writes: the parts are not copied together first.
    pub fn write_frame_parts(&mut self, parts: &[&[u8]]) -> ClientResult<()> {
        let io = |source| ClientError::Io { address: self.address.clone(), source };
        let mut slices: Vec<std::io::IoSlice> = parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match self.stream.write_vectored(slices) {
                Ok(0) => return Err(io(std::io::ErrorKind::WriteZero.into())),
                Ok(written) => std::io::IoSlice::advance_slices(&mut slices, written),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io(error)),
            }
        }
        Ok(())
    }
}

/// The reading half of a pipelined connection.
pub struct PipelineReader {
    stream: TcpStream,
    address: String,
}

impl PipelineReader {
    /// Reads one response frame and decodes it (header version from the response type).
    pub fn read_response<Resp: Decodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
    ) -> ClientResult<(i32, Resp)> {
        let io = |source| ClientError::Io { address: self.address.clone(), source };
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = i32::from_be_bytes(size);
        if size < 4 || size as usize > MAX_RESPONSE_BYTES {
            return Err(ClientError::Kafka(format!("response of {size} bytes is out of bounds")));
        }
        let mut body = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut body)
            .map_err(|source| ClientError::Io { address: self.address.clone(), source })?;
        let mut body = Bytes::from(body);
        let codec = |reason: String| ClientError::Codec { api, reason };
        let header = kafka_protocol::messages::ResponseHeader::decode(&mut body, Resp::header_version(version))
            .map_err(|e| codec(e.to_string()))?;
        let response = Resp::decode(&mut body, version).map_err(|e| codec(e.to_string()))?;
        Ok((header.correlation_id, response))
    }
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, positive, modulo the partition count.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// Murmur2 as Kafka's `Utils.murmur2` computes it (seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The last version of a request that carries topic names: Produce v13 and Fetch v13 carry topic ids in their
/// place (KIP-516), and this client fills in names only. Apache Kafka 4.x serves those versions, and a request
/// at them that names its topic gets UNKNOWN_TOPIC_ID for every partition.
fn names_topics_until(api: ApiKey) -> Option<i16> {
    match api {
        ApiKey::Produce | ApiKey::Fetch => Some(12),
        _ => None,
    }
}

/// The highest version in both the broker's range for `api` (from ApiVersions: key, min, max) and the client's.
fn negotiate(broker: &[(i16, i16, i16)], api: ApiKey, client_min: i16, client_max: i16) -> Option<i16> {
    broker.iter().find(|(key, _, _)| *key == api as i16).and_then(|(_, min, max)| {
        let version = (*max).min(client_max);
        (version >= (*min).max(client_min)).then_some(version)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn produce_and_fetch_stay_at_versions_that_name_topics_against_kafka_4() {
        // Apache Kafka 4.4's ApiVersions ranges for Produce (0) and Fetch (1), and Metadata (3).
        let kafka = [(0, 3, 13), (1, 4, 18), (3, 0, 13)];
        let produce = names_topics_until(ApiKey::Produce).unwrap_or(i16::MAX).min(13);
        assert_eq!(negotiate(&kafka, ApiKey::Produce, 3, produce), Some(12));
        let fetch = names_topics_until(ApiKey::Fetch).unwrap_or(i16::MAX).min(18);
        assert_eq!(negotiate(&kafka, ApiKey::Fetch, 4, fetch), Some(12));
        assert_eq!(names_topics_until(ApiKey::Metadata), None);
        assert_eq!(negotiate(&kafka, ApiKey::Metadata, 0, 13), Some(13));
        // A broker that stops below the client's floor is refused, not spoken to at a version it lacks.
        assert_eq!(negotiate(&[(0, 0, 2)], ApiKey::Produce, 3, 12), None);
        assert_eq!(negotiate(&kafka, ApiKey::ListOffsets, 0, 9), None);
    }
}
