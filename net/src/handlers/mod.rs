//! The handlers, and the registry: one file per Kafka API, each declaring its key, its versions and its
//! handler function by implementing [`api::Api`], and one list of them, [`APIS`], in this file. ApiVersions,
//! version checks, decoding and dispatch all read that list, so a version is advertised exactly when a
//! handler serves it.
//!
//! A handler runs on the shard that owns the connection, sends per-partition work to the owning shards, group
//! work to the group's coordinator shard and controller work to shard 0, and returns its response. Produce and
//! Fetch are hand-written for zero copy: Produce keeps its record sets as slices of the received frame, and
//! Fetch answers with file slices sent by `sendfile(2)`. The others use kafka-protocol's codec.
//!
//! ApiVersions itself is answered here, since its answer is the list. A request for an API or version that is
//! not in the list gets UNSUPPORTED_VERSION (with the list, so the client can retry with a version both sides
//! know); bytes that do not decode as the API and version they claim close the connection.
//!
//! Besides the API files: [`api`] (the handler contract and the generic decoding glue), [`config_changes`]
//! (what the config alters share), [`group_routing`] (finding a group's coordinator shard) and
//! [`response_errors`] (the error codes in each answer, for the metrics).
//!
//! **Adding an API:** its handler file, with a unit struct implementing [`api::Api`]; then, here, its `mod` line
//! and its line in [`APIS`]; and, for a codec-encoded answer, where its error codes sit
//! ([`response_errors`], which the request metrics count).

pub mod api;
pub mod config_changes;
pub mod group_routing;
pub mod response_errors;

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod describe_user_scram_credentials;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use self::api::{versions, Api, ApiEntry, Call};
use crate::error::{ConnectionError, ResponseError};
use crate::response::Response;
use crate::shard::Shard;
use crate::wire::{encode_response, parse_header, Reader, RequestHeader, WireError};

/// Every API Sluice serves, in the order ApiVersions lists them.
pub static APIS: &[ApiEntry] = &[
    ApiEntry::of::<produce::Produce>(),
    ApiEntry::of::<fetch::Fetch>(),
    ApiEntry::of::<list_offsets::ListOffsets>(),
    ApiEntry::of::<metadata::Metadata>(),
    ApiEntry::of::<offset_for_leader_epoch::OffsetForLeaderEpoch>(),
    ApiEntry::of::<ApiVersions>(),
    ApiEntry::of::<create_topics::CreateTopics>(),
    ApiEntry::of::<delete_topics::DeleteTopics>(),
    ApiEntry::of::<init_producer_id::InitProducerId>(),
    ApiEntry::of::<describe_configs::DescribeConfigs>(),
    ApiEntry::of::<alter_configs::AlterConfigs>(),
    ApiEntry::of::<create_partitions::CreatePartitions>(),
    ApiEntry::of::<delete_records::DeleteRecords>(),
    ApiEntry::of::<incremental_alter_configs::IncrementalAlterConfigs>(),
    ApiEntry::of::<describe_cluster::DescribeCluster>(),
    ApiEntry::of::<describe_log_dirs::DescribeLogDirs>(),
    ApiEntry::of::<find_coordinator::FindCoordinator>(),
    ApiEntry::of::<join_group::JoinGroup>(),
    ApiEntry::of::<sync_group::SyncGroup>(),
    ApiEntry::of::<heartbeat::Heartbeat>(),
    ApiEntry::of::<leave_group::LeaveGroup>(),
    ApiEntry::of::<offset_commit::OffsetCommit>(),
    ApiEntry::of::<offset_fetch::OffsetFetch>(),
    ApiEntry::of::<describe_groups::DescribeGroups>(),
    ApiEntry::of::<list_groups::ListGroups>(),
    ApiEntry::of::<delete_groups::DeleteGroups>(),
    ApiEntry::of::<offset_delete::OffsetDelete>(),
    ApiEntry::of::<consumer_group_heartbeat::ConsumerGroupHeartbeat>(),
    ApiEntry::of::<consumer_group_describe::ConsumerGroupDescribe>(),
    ApiEntry::of::<describe_quorum::DescribeQuorum>(),
    ApiEntry::of::<alter_partition_reassignments::AlterPartitionReassignments>(),
    ApiEntry::of::<list_partition_reassignments::ListPartitionReassignments>(),
    ApiEntry::of::<describe_acls::DescribeAcls>(),
    ApiEntry::of::<create_acls::CreateAcls>(),
    ApiEntry::of::<delete_acls::DeleteAcls>(),
    ApiEntry::of::<describe_user_scram_credentials::DescribeUserScramCredentials>(),
    ApiEntry::of::<alter_user_scram_credentials::AlterUserScramCredentials>(),
    ApiEntry::of::<sasl_handshake::SaslHandshake>(),
    ApiEntry::of::<sasl_authenticate::SaslAuthenticate>(),
];

/// The registry line of an API key, whatever the version.
pub fn lookup(api_key: i16) -> Option<&'static ApiEntry> {
    APIS.iter().find(|entry| entry.key as i16 == api_key)
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Request(RequestHeader, Box<dyn Call>),
    /// A well-formed header for an API or version Sluice does not serve: answer UNSUPPORTED_VERSION.
    Unsupported(RequestHeader),
}

/// A request body, and the registry line of its API.
pub type ServedBody = (&'static ApiEntry, Bytes);

/// A frame cut into its request header and its body: the registry line of an API and version Sluice serves
/// (with the header's tagged fields skipped), or `None` for one it does not.
pub fn split_frame(frame: Bytes) -> Result<(RequestHeader, Option<ServedBody>), ConnectionError> {
    let malformed_header =
        |error: WireError| ConnectionError::Malformed { api_key: -1, api_version: -1, reason: error.to_string() };
    let mut reader = Reader::new(frame);
    let header = parse_header(&mut reader).map_err(malformed_header)?;
    let Some(api) = lookup(header.api_key).filter(|api| api.serves(header.api_version)) else {
        return Ok((header, None));
    };
    // Header v2 (flexible versions) ends with tagged fields.
    if api.key.request_header_version(header.api_version) >= 2 {
        reader.skip_tagged_fields().map_err(malformed_header)?;
    }
    Ok((header, Some((api, reader.into_rest()))))
}

/// Decodes one frame (without its size prefix). An error means the bytes are malformed.
pub fn decode_frame(frame: Bytes) -> Result<Decoded, ConnectionError> {
    let (header, served) = split_frame(frame)?;
    let Some((api, body)) = served else {
        return Ok(Decoded::Unsupported(header));
    };
    match api.decode(body, header.api_version) {
        Ok(call) => Ok(Decoded::Request(header, call)),
        Err(reason) => {
            Err(ConnectionError::Malformed { api_key: header.api_key, api_version: header.api_version, reason })
        }
    }
}

/// Runs one decoded request to its response.
pub async fn dispatch(shard: &Rc<Shard>, decoded: Decoded) -> Response {
    match decoded {
        Decoded::Unsupported(header) => {
            crate::metrics::record_error(header.api_key, ResponseError::UnsupportedVersion.code());
            Response::Frame(unsupported(&header))
        }
        Decoded::Request(header, call) => call.call(shard.clone(), header).await,
    }
}

/// ApiVersions (API 18), versions 0-3. Advertises exactly [`APIS`]. The response header is always v0, and a
/// request for an unsupported version gets UNSUPPORTED_VERSION with the full table, so the client can retry
/// with a version both sides know (KIP-511). Sends no tagged fields: Debian's librdkafka 2.0.2 fails to parse
/// some (DESIGN.md §7).
pub struct ApiVersions;

impl Api for ApiVersions {
    const KEY: ApiKey = ApiKey::ApiVersions;
    const VERSIONS: VersionRange = versions(0, 3);
    type Request = ApiVersionsRequest;
    type Response = ApiVersionsResponse;

    async fn handle(_shard: &Rc<Shard>, _header: &RequestHeader, _request: ApiVersionsRequest) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(advertised())
    }
}

fn advertised() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|entry| {
            ApiVersion::default()
                .with_api_key(entry.key as i16)
                .with_min_version(entry.versions.min)
                .with_max_version(entry.versions.max)
        })
        .collect()
}

/// The answer to any API key or version Sluice does not serve: an ApiVersions v0 body carrying
/// UNSUPPORTED_VERSION and the table, under header v0.
pub fn unsupported(header: &RequestHeader) -> Bytes {
    tracing::debug!(api_key = header.api_key, version = header.api_version, "unsupported API or version");
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(advertised());
    let v0 = RequestHeader {
        api_key: ApiKey::ApiVersions as i16,
        api_version: 0,
        correlation_id: header.correlation_id,
        client_id: None,
        client_host: String::new(),
        principal: None,
    };
    encode_response(&v0, &response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_registry_serves_only_versions_its_codecs_know() {
        let mut keys = std::collections::HashSet::new();
        for entry in APIS {
            assert!(keys.insert(entry.key as i16), "{entry:?} is registered twice");
            assert!(entry.versions.min <= entry.versions.max, "{entry:?} serves no version");
            assert!(
                entry.decodes.min <= entry.versions.min && entry.versions.max <= entry.decodes.max,
                "{entry:?} advertises versions its request decoder ({}) does not know",
                entry.decodes
            );
            if let Some(encodes) = entry.encodes {
                assert!(
                    encodes.min <= entry.versions.min && entry.versions.max <= encodes.max,
                    "{entry:?} advertises versions its response encoder ({encodes}) does not know"
                );
            }
            // Header versions come from the codec's table for the key, so nothing newer than it is served. A
            // hand-written decoder may serve older versions than the codec knows (Produce v0-2).
            let known = entry.key.valid_versions();
            assert!(entry.versions.max <= known.max, "{entry:?} is newer than the codec's {known}");
        }
    }

    #[test]
    fn api_versions_advertises_exactly_the_registry() {
        let advertised = advertised();
        assert_eq!(advertised.len(), APIS.len());
        for (line, entry) in advertised.iter().zip(APIS) {
            assert_eq!(
                (line.api_key, line.min_version, line.max_version),
                (entry.key as i16, entry.versions.min, entry.versions.max)
            );
        }
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
