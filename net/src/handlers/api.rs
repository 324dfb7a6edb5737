//! What a Kafka API handler is: the [`Api`] trait each handler file implements (its key, the versions it
//! serves, its request type and its handler function), and the generic glue the registry uses to turn a frame
//! into a call of that handler. Also the small helpers most handlers use.
//!
//! Decoding happens on the connection's reader, before the request's task is spawned, so bytes that do not
//! decode close the connection before any later frame runs. The decoded request then waits, boxed, for the
//! task to call its handler.

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes, VersionRange};

use super::response_errors::ErrorCodes;
use crate::response::Response;
use crate::shard::Shard;
use crate::wire::{encode_response, RequestHeader};

/// One Kafka API, implemented by a unit struct in its handler file and listed once in the registry
/// (`handlers::APIS`). ApiVersions, version checks, decoding and dispatch all read that list, so the
/// versions advertised are exactly the ones a handler declares here.
pub trait Api: 'static {
    const KEY: ApiKey;
    /// The versions this handler serves.
    const VERSIONS: VersionRange;
    /// The decoded request: a kafka-protocol message, or a hand-written view (Produce).
    type Request: DecodeRequest;
    /// What the handler returns: a kafka-protocol response message, or a [`Response`] it assembled itself.
    type Response: IntoResponse;

    /// Serves one request, on the shard that owns the connection.
    fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: Self::Request,
    ) -> impl Future<Output = Self::Response>;
}

/// A request body decoder.
pub trait DecodeRequest: fmt::Debug + Sized + 'static {
    /// The versions this decoder understands.
    const DECODES: VersionRange;
    /// The request, or why the bytes are malformed.
    fn decode(body: Bytes, version: i16) -> Result<Self, String>;
}

/// Every kafka-protocol request decodes through the codec (patched to bound its allocations by the bytes
/// received; `third_party/kafka-protocol/PATCHES.md`).
impl<T: Decodable + Message + fmt::Debug + 'static> DecodeRequest for T {
    const DECODES: VersionRange = T::VERSIONS;

    fn decode(mut body: Bytes, version: i16) -> Result<Self, String> {
        T::decode(&mut body, version).map_err(|error| error.to_string())
    }
}

/// How a handler's result becomes the bytes sent back.
pub trait IntoResponse {
    /// The versions the encoder can write, or `None` for a response the handler assembled itself.
    const ENCODES: Option<VersionRange>;
    fn into_response(self, header: &RequestHeader) -> Response;
}

/// A codec-encoded answer also reports its error codes to the request metrics (`response_errors.rs`).
impl<T: Encodable + Message + ErrorCodes> IntoResponse for T {
    const ENCODES: Option<VersionRange> = Some(T::VERSIONS);

    fn into_response(self, header: &RequestHeader) -> Response {
        self.error_codes(&mut |code| crate::metrics::record_error(header.api_key, code));
        Response::Frame(encode_response(header, &self))
    }
}

impl IntoResponse for Response {
    const ENCODES: Option<VersionRange> = None;

    fn into_response(self, _header: &RequestHeader) -> Response {
        self
    }
}

/// A decoded request, bound to its handler and waiting for the shard to run it.
pub trait Call: fmt::Debug {
    fn call(self: Box<Self>, shard: Rc<Shard>, header: RequestHeader) -> LocalBoxFuture<'static, Response>;
}

struct Bound<A: Api>(A::Request);

impl<A: Api> fmt::Debug for Bound<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Request").field(&A::KEY).field(&self.0).finish()
    }
}

impl<A: Api> Call for Bound<A> {
    fn call(self: Box<Self>, shard: Rc<Shard>, header: RequestHeader) -> LocalBoxFuture<'static, Response> {
        Box::pin(async move { A::handle(&shard, &header, self.0).await.into_response(&header) })
    }
}

/// One line of the registry: an API, the versions it serves, and how its requests decode.
#[derive(Clone, Copy)]
pub struct ApiEntry {
    pub key: ApiKey,
    pub versions: VersionRange,
    /// What the request decoder understands: the codec's versions, or a hand-written parser's.
    pub decodes: VersionRange,
    /// What the response encoder can write; `None` when the handler assembles the response itself.
    pub encodes: Option<VersionRange>,
    decode: fn(Bytes, i16) -> Result<Box<dyn Call>, String>,
}

impl ApiEntry {
    pub const fn of<A: Api>() -> ApiEntry {
        ApiEntry {
            key: A::KEY,
            versions: A::VERSIONS,
            decodes: <A::Request as DecodeRequest>::DECODES,
            encodes: <A::Response as IntoResponse>::ENCODES,
            decode: decode_call::<A>,
        }
    }

    pub fn serves(&self, version: i16) -> bool {
        (self.versions.min..=self.versions.max).contains(&version)
    }

    /// Decodes a request body of this API; an error means the bytes are malformed.
    pub fn decode(&self, body: Bytes, version: i16) -> Result<Box<dyn Call>, String> {
        (self.decode)(body, version)
    }
}

impl fmt::Debug for ApiEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} v{}-{}", self.key, self.versions.min, self.versions.max)
    }
}

fn decode_call<A: Api>(body: Bytes, version: i16) -> Result<Box<dyn Call>, String> {
    Ok(Box::new(Bound::<A>(A::Request::decode(body, version)?)))
}

/// `min..=max`, for the `VERSIONS` lines.
pub const fn versions(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// Topics only the broker writes: the group coordinator's `__consumer_offsets`, the metadata log
/// `__cluster_metadata`, and `__transaction_state`, reserved for the transaction coordinator. Kafka's
/// `Topic.isInternal`: clients' Produce and DeleteRecords on them get INVALID_TOPIC_EXCEPTION.
pub const INTERNAL_TOPICS: [&str; 3] = ["__consumer_offsets", "__cluster_metadata", "__transaction_state"];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}
