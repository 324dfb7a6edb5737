//! InitProducerId (API 22), versions 0-4: a new producer id from a block the controller allocated to this
//! broker (blocks are committed to the metadata log, so no id is ever handed out twice). Transactional ids need
//! the transaction coordinator, which is not built yet: they are refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED so a client fails clearly instead of retrying forever.
//!
//! The producer id and epoch a client presents (v3+, KIP-360) are not trusted. For a producer without a
//! transactional id Kafka's `TransactionCoordinator.handleInitProducerId` keeps no state to check them against,
//! and "always blindly accept[s] the request and return[s] a new producerId" with epoch 0; only a transactional
//! id's coordinator compares the pair with its own (PRODUCER_FENCED when it is neither the current nor the
//! previous one). Sluice does the same: a presented pair, stale, foreign or current, gets a fresh id and
//! never a bump of the presented id, so no client can fence, or take over the sequence space of, another
//! producer's id through this request. A pair with only one half set is INVALID_REQUEST, as in Kafka's
//! `KafkaApis`. An idempotent producer that bumps its epoch itself (the Java client, KIP-360) needs no request.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct InitProducerId;

impl Api for InitProducerId {
    const KEY: ApiKey = ApiKey::InitProducerId;
    const VERSIONS: VersionRange = versions(0, 4);
    type Request = InitProducerIdRequest;
    type Response = InitProducerIdResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
        if let Some(error) = refusal(&request) {
            return response.with_error_code(error.code());
        }
        // Kafka's check for an idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
        if !shard.authorized_on_cluster(header, AclOperation::IdempotentWrite)
            && !shard.authorized_on_any(header, AclOperation::Write, ResourceType::Topic)
        {
            return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        }
        match shard.allocate_producer_id().await {
            Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(error) => response.with_error_code(admin_error(&error).code()),
        }
    }
}

/// Why a request gets no producer id, if it does not: see the module doc. Otherwise it gets a new id with
/// epoch 0, whatever pair it presented.
pub fn refusal(request: &InitProducerIdRequest) -> Option<ResponseError> {
    if request.transactional_id.is_some() {
        return Some(ResponseError::TransactionalIdAuthorizationFailed);
    }
    match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => None,
        (-1, _) | (_, -1) => Some(ResponseError::InvalidRequest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::handlers::{decode_frame, Decoded};

    /// An InitProducerId v4 frame body (flexible header v2), written byte by byte: no transactional id, the
    /// given producer id and epoch.
    fn request_bytes(producer_id: i64, producer_epoch: i16) -> Vec<u8> {
        let mut out = vec![0, 22, 0, 4, 0, 0, 0, 9, 0xff, 0xff, 0]; // key 22, v4, correlation 9, null client id
        out.push(0); // transactional_id: compact nullable string, null
        out.extend_from_slice(&60_000i32.to_be_bytes()); // transaction_timeout_ms
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&producer_epoch.to_be_bytes());
        out.push(0); // tagged fields
        out
    }

    fn decoded(producer_id: i64, producer_epoch: i16) -> InitProducerIdRequest {
        let bytes = request_bytes(producer_id, producer_epoch);
        // The broker's decoder takes the frame as an InitProducerId v4 request...
        match decode_frame(Bytes::from(bytes.clone())) {
            Ok(Decoded::Request(header, _)) => {
                assert_eq!((header.api_key, header.api_version, header.correlation_id), (22, 4, 9));
            }
            other => panic!("did not decode: {other:?}"),
        }
        // ...whose body (after the 11-byte header) holds the pair as written.
        let mut body = Bytes::from(bytes).split_off(11);
        let request = <InitProducerIdRequest as kafka_protocol::protocol::Decodable>::decode(&mut body, 4).unwrap();
        assert!(body.is_empty());
        assert_eq!((request.producer_id.0, request.producer_epoch), (producer_id, producer_epoch));
        request
    }

    #[test]
    fn presented_pairs_are_never_bumped_and_half_pairs_are_invalid() {
        // No pair: a new id.
        assert_eq!(refusal(&decoded(-1, -1)), None);
        // A current, stale or foreign pair is not refused, and not trusted either: the handler answers it with
        // a freshly allocated id at epoch 0 (it never reads the presented id).
        for (id, epoch) in [(1000, 0), (1000, 7), (987_654_321, 3), (5, i16::MAX - 1)] {
            assert_eq!(refusal(&decoded(id, epoch)), None);
        }
        // Half a pair is malformed, as Kafka's KafkaApis says.
        assert_eq!(refusal(&decoded(-1, 3)), Some(ResponseError::InvalidRequest));
        assert_eq!(refusal(&decoded(1000, -1)), Some(ResponseError::InvalidRequest));
        let transactional = InitProducerIdRequest::default().with_transactional_id(Some(
            kafka_protocol::messages::TransactionalId(kafka_protocol::protocol::StrBytes::from_static_str("x")),
        ));
        assert_eq!(refusal(&transactional), Some(ResponseError::TransactionalIdAuthorizationFailed));
    }
}
