//! Kafka primitive types, read from received bytes with every length checked against what actually arrived,
//! and the two ends of every frame: the request header, and the response frame's size and header.
//!
//! Used by the hand-written parts of the codec: request headers, Produce requests (whose record sets must stay
//! zero-copy `Bytes` slices of the frame) and Fetch responses (whose record sets are file slices). Everything
//! else goes through kafka-protocol, framed by [`encode_response`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

/// Why bytes did not decode. The connection that sent them is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{field}: needs {needed} bytes, {available} left")]
    Short { field: &'static str, needed: usize, available: usize },
    #[error("{field}: invalid length {length}")]
    BadLength { field: &'static str, length: i64 },
    #[error("{field}: varint longer than 5 bytes")]
    LongVarint { field: &'static str },
    #[error("{field}: not UTF-8")]
    NotUtf8 { field: &'static str },
}

pub type WireResult<T> = Result<T, WireError>;

/// A cursor over one received frame. `Bytes` slices it hands out share the frame's memory.
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, field: &'static str, needed: usize) -> WireResult<()> {
        if self.buf.len() < needed {
            return Err(WireError::Short { field, needed, available: self.buf.len() });
        }
        Ok(())
    }

    pub fn i8(&mut self, field: &'static str) -> WireResult<i8> {
        self.need(field, 1)?;
        Ok(self.buf.get_i8())
    }

    pub fn i16(&mut self, field: &'static str) -> WireResult<i16> {
        self.need(field, 2)?;
        Ok(self.buf.get_i16())
    }

    pub fn i32(&mut self, field: &'static str) -> WireResult<i32> {
        self.need(field, 4)?;
        Ok(self.buf.get_i32())
    }

    pub fn i64(&mut self, field: &'static str) -> WireResult<i64> {
        self.need(field, 8)?;
        Ok(self.buf.get_i64())
    }

    /// Unsigned LEB128 varint of at most 5 bytes (a u32).
    pub fn uvarint(&mut self, field: &'static str) -> WireResult<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            self.need(field, 1)?;
            let byte = self.buf.get_u8();
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::LongVarint { field })
    }

    pub fn take(&mut self, field: &'static str, len: usize) -> WireResult<Bytes> {
        self.need(field, len)?;
        Ok(self.buf.split_to(len))
    }

    fn text(field: &'static str, bytes: Bytes) -> WireResult<String> {
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::NotUtf8 { field })
    }

    /// `STRING` / `NULLABLE_STRING` (i16 length, -1 is null).
    pub fn nullable_string(&mut self, field: &'static str) -> WireResult<Option<String>> {
        match self.i16(field)? {
            -1 => Ok(None),
            len if len >= 0 => Ok(Some(Self::text(field, self.take(field, len as usize)?)?)),
            len => Err(WireError::BadLength { field, length: i64::from(len) }),
        }
    }

    pub fn string(&mut self, field: &'static str) -> WireResult<String> {
        self.nullable_string(field)?.ok_or(WireError::BadLength { field, length: -1 })
    }

    /// `COMPACT_NULLABLE_STRING` (uvarint length + 1, 0 is null).
    pub fn compact_nullable_string(&mut self, field: &'static str) -> WireResult<Option<String>> {
        match self.uvarint(field)? {
            0 => Ok(None),
            n => Ok(Some(Self::text(field, self.take(field, (n - 1) as usize)?)?)),
        }
    }

    pub fn compact_string(&mut self, field: &'static str) -> WireResult<String> {
        self.compact_nullable_string(field)?.ok_or(WireError::BadLength { field, length: -1 })
    }

    /// `NULLABLE_BYTES` / `RECORDS` (i32 length, -1 is null).
    pub fn nullable_bytes(&mut self, field: &'static str) -> WireResult<Option<Bytes>> {
        match self.i32(field)? {
            -1 => Ok(None),
            len if len >= 0 => Ok(Some(self.take(field, len as usize)?)),
            len => Err(WireError::BadLength { field, length: i64::from(len) }),
        }
    }

    pub fn compact_nullable_bytes(&mut self, field: &'static str) -> WireResult<Option<Bytes>> {
        match self.uvarint(field)? {
            0 => Ok(None),
            n => Ok(Some(self.take(field, (n - 1) as usize)?)),
        }
    }

    /// An array length: i32 (-1 is null, read as 0) or compact (uvarint + 1). The count is only a promise;
    /// callers size any allocation with [`Reader::capacity_for`].
    pub fn array_len(&mut self, field: &'static str, compact: bool) -> WireResult<usize> {
        if compact {
            Ok(self.uvarint(field)?.saturating_sub(1) as usize)
        } else {
            match self.i32(field)? {
                -1 => Ok(0),
                len if len >= 0 => Ok(len as usize),
                len => Err(WireError::BadLength { field, length: i64::from(len) }),
            }
        }
    }

    /// The capacity to reserve for `declared` elements of at least `min_element_bytes` each: no more than the
    /// bytes left can hold, so a declared count of `i32::MAX` in a small frame reserves next to nothing, and
    /// a large frame reserves no more than it could decode to.
    pub fn capacity_for(&self, declared: usize, min_element_bytes: usize) -> usize {
        declared.min(self.remaining() / min_element_bytes.max(1))
    }

    /// Skips a tagged-field section (flexible versions).
    pub fn skip_tagged_fields(&mut self) -> WireResult<()> {
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.take("tagged field", size)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The peer's address, filled in by the connection (not on the wire).
    pub client_host: String,
    /// The authenticated principal (`User:NAME`) on a SASL listener, filled in by the connection; `None` is
    /// Kafka's `User:ANONYMOUS` (a PLAINTEXT listener).
    pub principal: Option<String>,
}

/// Parses the part of a request header every version has (header v1: key, version, correlation id, client
/// id). Header v2, for flexible versions, adds tagged fields after it: the registry, which knows which
/// versions are flexible, skips them.
pub fn parse_header(reader: &mut Reader) -> Result<RequestHeader, WireError> {
    let api_key = reader.i16("api_key")?;
    let api_version = reader.i16("api_version")?;
    let correlation_id = reader.i32("correlation_id")?;
    let client_id = reader.nullable_string("client_id")?;
    Ok(RequestHeader { api_key, api_version, correlation_id, client_id, client_host: String::new(), principal: None })
}

/// Response header version: ApiVersions always uses v0 (so a client can read the error whatever version it
/// tried); otherwise v1 (tagged fields) for flexible versions. Only called for requests the registry serves
/// (an unsupported one is answered as ApiVersions).
pub fn response_header_version(header: &RequestHeader) -> i16 {
    match ApiKey::try_from(header.api_key) {
        Ok(ApiKey::ApiVersions) | Err(_) => 0,
        Ok(api) => api.response_header_version(header.api_version),
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

/// Writers for the hand-assembled responses.
pub trait WriteExt: BufMut {
    fn put_uvarint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        self.put_u8(value as u8);
    }

    fn put_string(&mut self, value: &str, compact: bool) {
        if compact {
            self.put_uvarint(value.len() as u32 + 1);
        } else {
            self.put_i16(value.len() as i16);
        }
        self.put_slice(value.as_bytes());
    }

    fn put_array_len(&mut self, len: usize, compact: bool) {
        if compact {
            self.put_uvarint(len as u32 + 1);
        } else {
            self.put_i32(len as i32);
        }
    }

    /// Length prefix of a `RECORDS` field whose bytes follow separately.
    fn put_records_len(&mut self, len: usize, compact: bool) {
        if compact {
            self.put_uvarint(len as u32 + 1);
        } else {
            self.put_i32(len as i32);
        }
    }

    fn put_empty_tagged_fields(&mut self) {
        self.put_u8(0);
    }
}

impl WriteExt for BytesMut {}
impl WriteExt for Vec<u8> {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lengths_beyond_the_bytes_received_are_errors() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, b'a']));
        assert!(matches!(r.nullable_string("s"), Err(WireError::Short { .. })));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(matches!(r.uvarint("v"), Err(WireError::LongVarint { .. })));
        let mut r = Reader::new(Bytes::from_static(&[0x80, 0, 0, 0]));
        assert!(matches!(r.array_len("a", false), Err(WireError::BadLength { .. })));
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]));
        assert_eq!(r.array_len("a", false).unwrap(), i32::MAX as usize);
    }

    #[test]
    fn varints_round_trip() {
        for value in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = BytesMut::new();
            out.put_uvarint(value);
            assert_eq!(Reader::new(out.freeze()).uvarint("v").unwrap(), value);
        }
    }
}
