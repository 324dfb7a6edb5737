//! InitProducerId (API 22), versions 0-4: a new producer id from the controller's block allocator, or, when
//! an idempotent producer presents its id and epoch (KIP-360), the same id with the next epoch. Transactional
//! ids need the transaction coordinator, which is not built yet: they are refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED so a client fails clearly instead of retrying forever.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::api::{versions, Api};
use crate::error::{controller_error, ResponseError};
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
        let allocated = shard
            .run_on(0, |shard| async move {
                match shard.controller() {
                    Some(controller) => {
                        controller.allocate_producer_id().await.map_err(|error| controller_error(&error).code())
                    }
                    None => Err(ResponseError::NotController.code()),
                }
            })
            .await;
        match allocated {
            Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(code) => response.with_error_code(code),
        }
    }
}
