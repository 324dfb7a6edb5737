//! SaslHandshake (API 17), version 1 (the SASL tokens then travel in SaslAuthenticate; v0's raw tokens are not
//! served). The exchange itself runs on the connection, before any request is dispatched (`crate::sasl`): a
//! SaslHandshake that reaches this handler came on a PLAINTEXT listener or after the connection authenticated,
//! and gets ILLEGAL_SASL_STATE, as Kafka answers it there.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::VersionRange;

use super::api::{text, versions, Api};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct SaslHandshake;

impl Api for SaslHandshake {
    const KEY: ApiKey = ApiKey::SaslHandshake;
    const VERSIONS: VersionRange = versions(1, 1);
    type Request = SaslHandshakeRequest;
    type Response = SaslHandshakeResponse;

    async fn handle(
        shard: &Rc<Shard>,
        _header: &RequestHeader,
        _request: SaslHandshakeRequest,
    ) -> SaslHandshakeResponse {
        SaslHandshakeResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_mechanisms(shard.settings.sasl_mechanisms.iter().map(|m| text(m.name())).collect())
    }
}
