//! InitProducerId (API 22), versions 0-4: a new producer id from a block the controller allocated to this
//! broker (blocks are committed to the metadata log, so no id is ever handed out twice), or, when
//! an idempotent producer presents its id and epoch (KIP-360), the same id with the next epoch. Transactional
//! ids need the transaction coordinator, which is not built yet: they are refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED so a client fails clearly instead of retrying forever.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

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
        _header: &RequestHeader,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
        if request.transactional_id.is_some() {
            return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        let (id, epoch) = (request.producer_id.0, request.producer_epoch);
        if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
            return response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch + 1);
        }
        match shard.allocate_producer_id().await {
            Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(error) => response.with_error_code(admin_error(&error).code()),
        }
    }
}
