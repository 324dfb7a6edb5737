//! The controller listener: how nodes carry [`sluice_replication::transport`]'s messages.
//!
//! A frame is a 4-byte big-endian size, then a kind byte, an 8-byte request id and the payload:
//!
//! | kind | payload |
//! |---|---|
//! | 1 Hello | JSON [`Hello`], the first frame each way |
//! | 2 Refused | JSON `{reason, cluster_id}` (the refusing node's cluster), then the connection closes |
//! | 3 Raft | a raft-rs message (protobuf), one way |
//! | 4 Request | JSON [`PeerRequest`] |
//! | 5 Response | JSON [`PeerResponse`] for the request with the same id |
//!
//! Sizes are checked against [`MAX_FRAME_BYTES`] before anything is buffered, and a frame's buffer grows only
//! as its bytes arrive. [`server`] answers on shard 0's controller listener; [`client`] keeps one connection
//! per voter and implements [`sluice_replication::transport::PeerTransport`].

pub mod client;
pub mod server;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use sluice_replication::transport::{Hello, PeerRequest, PeerResponse};

/// The largest frame either side accepts: metadata snapshots of big clusters travel whole.
pub const MAX_FRAME_BYTES: usize = 256 << 20;
/// Bytes buffered per read step.
const READ_STEP_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFrame {
    Hello(Hello),
    /// Why the hello was refused, and the refusing node's cluster id.
    Refused {
        reason: String,
        cluster_id: String,
    },
    Raft(Bytes),
    Request {
        id: u64,
        request: PeerRequest,
    },
    Response {
        id: u64,
        response: PeerResponse,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PeerFrameError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl PeerFrame {
    pub fn encode(&self) -> Bytes {
        let (kind, id, payload): (u8, u64, Vec<u8>) = match self {
            PeerFrame::Hello(hello) => (1, 0, serde_json::to_vec(hello).unwrap_or_default()),
            PeerFrame::Refused { reason, cluster_id } => {
                let body = serde_json::json!({ "reason": reason, "cluster_id": cluster_id });
                (2, 0, serde_json::to_vec(&body).unwrap_or_default())
            }
            PeerFrame::Raft(bytes) => (3, 0, bytes.to_vec()),
            PeerFrame::Request { id, request } => (4, *id, serde_json::to_vec(request).unwrap_or_default()),
            PeerFrame::Response { id, response } => (5, *id, serde_json::to_vec(response).unwrap_or_default()),
        };
        let mut out = BytesMut::with_capacity(4 + 9 + payload.len());
        out.put_u32((9 + payload.len()) as u32);
        out.put_u8(kind);
        out.put_u64(id);
        out.extend_from_slice(&payload);
        out.freeze()
    }

    pub fn decode(mut body: Bytes) -> Result<PeerFrame, PeerFrameError> {
        if body.len() < 9 {
            return Err(PeerFrameError::Malformed(format!("{} bytes is shorter than a header", body.len())));
        }
        let kind = body.get_u8();
        let id = body.get_u64();
        let json = |what: &str, bytes: &[u8]| {
            PeerFrameError::Malformed(format!(
                "{what}: {}",
                String::from_utf8_lossy(bytes).chars().take(80).collect::<String>()
            ))
        };
        Ok(match kind {
            1 => PeerFrame::Hello(serde_json::from_slice(&body).map_err(|e| json(&format!("hello ({e})"), &body))?),
            2 => {
                let value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| json(&format!("refusal ({e})"), &body))?;
                let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                PeerFrame::Refused { reason: field("reason"), cluster_id: field("cluster_id") }
            }
            3 => PeerFrame::Raft(body),
            4 => PeerFrame::Request {
                id,
                request: serde_json::from_slice(&body).map_err(|e| json(&format!("request ({e})"), &body))?,
            },
            5 => PeerFrame::Response {
                id,
                response: serde_json::from_slice(&body).map_err(|e| json(&format!("response ({e})"), &body))?,
            },
            other => return Err(PeerFrameError::Malformed(format!("unknown frame kind {other}"))),
        })
    }
}

/// Reads one frame. `None` at a clean end of stream between frames.
pub async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> Result<Option<PeerFrame>, PeerFrameError> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut size[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(PeerFrameError::Malformed("stream ended inside a size".into()))
            };
        }
        got += n;
    }
    let size = u32::from_be_bytes(size) as usize;
    if size > MAX_FRAME_BYTES {
        return Err(PeerFrameError::TooLarge(size));
    }
    let mut body = Vec::new();
    while body.len() < size {
        let start = body.len();
        let step = READ_STEP_BYTES.min(size - start);
        body.resize(start + step, 0);
        reader.read_exact(&mut body[start..]).await?;
    }
    PeerFrame::decode(Bytes::from(body)).map(Some)
}

pub async fn write_frame(writer: &mut (impl AsyncWrite + Unpin), frame: &PeerFrame) -> Result<(), PeerFrameError> {
    writer.write_all(&frame.encode()).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sluice_replication::transport::ProbeAnswer;

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let frames = vec![
            PeerFrame::Hello(Hello {
                version: 1,
                node_id: 2,
                cluster_id: "c".into(),
                voters: "v".into(),
                directory_id: "d".into(),
                empty_log: true,
            }),
            PeerFrame::Refused { reason: "no".into(), cluster_id: "c".into() },
            PeerFrame::Raft(Bytes::from_static(b"\x01\x02")),
            PeerFrame::Request { id: 7, request: PeerRequest::Probe },
            PeerFrame::Response {
                id: 7,
                response: PeerResponse::Probe(ProbeAnswer { node_id: 1, cluster_id: String::new(), has_state: false }),
            },
        ];
        for frame in frames {
            let mut encoded = frame.encode();
            let size = encoded.get_u32() as usize;
            assert_eq!(size, encoded.len());
            assert_eq!(PeerFrame::decode(encoded).unwrap(), frame);
        }
        assert!(PeerFrame::decode(Bytes::from_static(b"\x04\0\0\0\0\0\0\0\x01{")).is_err());
        assert!(PeerFrame::decode(Bytes::from_static(b"\x09\0\0\0\0\0\0\0\x01")).is_err());
        assert!(PeerFrame::decode(Bytes::from_static(b"\x01")).is_err());
    }

    #[test]
    fn oversized_frames_are_refused_before_buffering() {
        let bytes = [0xffu8, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut reader = futures::io::Cursor::new(bytes.to_vec());
        let result = futures::executor::block_on(read_frame(&mut reader));
        assert!(matches!(result, Err(PeerFrameError::TooLarge(_))));
    }
}
