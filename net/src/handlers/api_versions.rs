//! ApiVersions (API 18), versions 0-3. Advertises exactly [`SUPPORTED_APIS`]. The response header is always
//! v0, and a request for an unsupported version gets UNSUPPORTED_VERSION with the full table, so the client
//! can retry with a version both sides know (KIP-511). Sends no tagged fields: Debian's librdkafka 2.0.2
//! fails to parse some (DESIGN.md §7).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::error::ResponseError;
use crate::protocol::{encode_response, RequestHeader, SUPPORTED_APIS};

fn table() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default().with_api_key(*key as i16).with_min_version(*min).with_max_version(*max)
        })
        .collect()
}

pub fn handle(header: &RequestHeader) -> Bytes {
    encode_response(header, &ApiVersionsResponse::default().with_api_keys(table()))
}

/// The answer to any API key or version Sluice does not serve: an ApiVersions v0 body carrying
/// UNSUPPORTED_VERSION and the table, under header v0.
pub fn unsupported(header: &RequestHeader) -> Bytes {
    tracing::debug!(api_key = header.api_key, version = header.api_version, "unsupported API or version");
    let response =
        ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(table());
    let v0 = RequestHeader {
        api_key: 18,
        api_version: 0,
        correlation_id: header.correlation_id,
        client_id: None,
        client_host: String::new(),
    };
    encode_response(&v0, &response)
}
