//! SASL on a connection of a `SASL_PLAINTEXT` listener: the SCRAM exchange (SCRAM-SHA-256, SCRAM-SHA-512)
//! against the credentials in the metadata image, before any other request runs.
//!
//! Kafka's sequence (KIP-43, KIP-152): ApiVersions may come first; then SaslHandshake v1 names a mechanism
//! (UNSUPPORTED_SASL_MECHANISM, with the enabled list, closes the connection); then SaslAuthenticate carries
//! the client's first message (answered with the server's first) and its final one (answered with the server's
//! signature). A failed exchange is answered SASL_AUTHENTICATION_FAILED, logged with its reason, and the
//! connection is closed after the answer. Any other request before the exchange completes closes the connection,
//! as Kafka closes it. Afterwards every request carries the principal `User:NAME`, which the authorizer reads,
//! and the SASL APIs get ILLEGAL_SASL_STATE from their handlers.
//!
//! The reader runs the exchange itself, frame by frame, so its steps keep their order and nothing is
//! dispatched before the connection is authenticated.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use sluice_replication::scram::{ScramMechanism, ServerExchange};

use crate::error::ConnectionError;
use crate::handlers::split_frame;
use crate::shard::Shard;
use crate::wire::{encode_response, RequestHeader};

/// What the reader does with a frame while the connection authenticates.
pub enum Step {
    /// Decode and dispatch it as usual (ApiVersions, or a version the registry answers UNSUPPORTED_VERSION).
    Dispatch,
    /// Send this answer; then, with a reason, close the connection.
    Answer { bytes: Bytes, close: Option<String> },
}

impl Step {
    fn answer(bytes: Bytes) -> Step {
        Step::Answer { bytes, close: None }
    }

    fn answer_and_close(bytes: Bytes, reason: String) -> Step {
        Step::Answer { bytes, close: Some(reason) }
    }
}

/// One connection's SASL state, in the order the exchange moves through it.
pub enum SaslSession {
    AwaitingHandshake,
    /// SaslHandshake picked the mechanism; the client's first message comes next.
    Handshaken(ScramMechanism),
    /// The server's first message is sent; the client's final one comes next.
    Exchanging(ScramMechanism, ServerExchange),
    /// The principal, `User:NAME`.
    Authenticated(String),
}

impl SaslSession {
    /// A session for a connection of a SASL listener; `None` on a PLAINTEXT listener.
    pub fn for_listener(shard: &Shard) -> Option<SaslSession> {
        (!shard.settings.sasl_mechanisms.is_empty()).then_some(SaslSession::AwaitingHandshake)
    }

    /// The authenticated principal, once the exchange succeeded.
    pub fn principal(&self) -> Option<&str> {
        match self {
            SaslSession::Authenticated(principal) => Some(principal),
            _ => None,
        }
    }

    /// Runs one frame received before the connection authenticated.
    pub fn step(&mut self, shard: &Shard, frame: Bytes) -> Result<Step, ConnectionError> {
        let (header, served) = split_frame(frame)?;
        let malformed = |reason: String| ConnectionError::Malformed {
            api_key: header.api_key,
            api_version: header.api_version,
            reason,
        };
        let Some((_, mut body)) = served else { return Ok(Step::Dispatch) };
        match ApiKey::try_from(header.api_key) {
            Ok(ApiKey::ApiVersions) => Ok(Step::Dispatch),
            Ok(ApiKey::SaslHandshake) => {
                let request = SaslHandshakeRequest::decode(&mut body, header.api_version)
                    .map_err(|e| malformed(e.to_string()))?;
                Ok(self.handshake(shard, &header, &request))
            }
            Ok(ApiKey::SaslAuthenticate) => {
                let request = SaslAuthenticateRequest::decode(&mut body, header.api_version)
                    .map_err(|e| malformed(e.to_string()))?;
                Ok(self.authenticate(shard, &header, &request))
            }
            _ => Err(ConnectionError::Unauthenticated { api_key: header.api_key }),
        }
    }

    fn handshake(&mut self, shard: &Shard, header: &RequestHeader, request: &SaslHandshakeRequest) -> Step {
        let enabled = &shard.settings.sasl_mechanisms;
        let names: Vec<StrBytes> = enabled.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
        let response = SaslHandshakeResponse::default().with_mechanisms(names);
        match enabled.iter().find(|m| m.name() == request.mechanism.as_str()) {
            Some(mechanism) if matches!(self, SaslSession::AwaitingHandshake) => {
                *self = SaslSession::Handshaken(*mechanism);
                Step::answer(encode_response(header, &response))
            }
            Some(_) => Step::answer_and_close(
                encode_response(header, &response.with_error_code(ResponseError::IllegalSaslState.code())),
                "a second SaslHandshake".into(),
            ),
            None => Step::answer_and_close(
                encode_response(header, &response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())),
                format!("SASL mechanism {} is not enabled", request.mechanism.as_str()),
            ),
        }
    }

    fn authenticate(&mut self, shard: &Shard, header: &RequestHeader, request: &SaslAuthenticateRequest) -> Step {
        let failed = |error: ResponseError, message: &str, reason: String| {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message.to_string())));
            Step::answer_and_close(encode_response(header, &response), reason)
        };
        let mechanism = match self {
            SaslSession::Handshaken(mechanism) | SaslSession::Exchanging(mechanism, _) => *mechanism,
            SaslSession::AwaitingHandshake | SaslSession::Authenticated(_) => {
                return failed(ResponseError::IllegalSaslState, "SaslHandshake must come first", "no handshake".into())
            }
        };
        let denied = format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            mechanism.name()
        );
        let answer = |bytes: Vec<u8>| {
            Step::answer(encode_response(
                header,
                &SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
            ))
        };
        // A failed step closes the connection, so the state it leaves behind is never read.
        match std::mem::replace(self, SaslSession::AwaitingHandshake) {
            SaslSession::Exchanging(_, exchange) => match exchange.finish(&request.auth_bytes) {
                Ok((user, server_final)) => {
                    tracing::debug!(%user, mechanism = mechanism.name(), "authenticated");
                    *self = SaslSession::Authenticated(format!("User:{user}"));
                    answer(server_final)
                }
                Err(error) => failed(ResponseError::SaslAuthenticationFailed, &denied, error.to_string()),
            },
            _ => {
                let image = shard.image();
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let lookup = |user: &str| image.scram.get(user).and_then(|c| c.get(&mechanism)).cloned();
                match ServerExchange::start(mechanism, &request.auth_bytes, &nonce, lookup) {
                    Ok((exchange, server_first)) => {
                        *self = SaslSession::Exchanging(mechanism, exchange);
                        answer(server_first)
                    }
                    Err(error) => failed(ResponseError::SaslAuthenticationFailed, &denied, error.to_string()),
                }
            }
        }
    }
}
