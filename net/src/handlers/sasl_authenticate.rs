//! SaslAuthenticate (API 36), versions 0-2. Like SaslHandshake, it is answered on the connection while the
//! connection authenticates (`crate::sasl`); one that reaches this handler gets ILLEGAL_SASL_STATE, as Kafka
//! answers a SASL token outside an exchange.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct SaslAuthenticate;

impl Api for SaslAuthenticate {
    const KEY: ApiKey = ApiKey::SaslAuthenticate;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = SaslAuthenticateRequest;
    type Response = SaslAuthenticateResponse;

    async fn handle(
        _shard: &Rc<Shard>,
        _header: &RequestHeader,
        _request: SaslAuthenticateRequest,
    ) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(text("no SASL exchange is in progress on this connection")))
    }
}
