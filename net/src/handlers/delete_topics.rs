//! DeleteTopics (API 20), versions 1-6: by name, or from v6 by topic id. A typed controller command; refused
//! while `delete.topic.enable` is false. Every replica deletes its partitions when it applies the change,
//! and the answer comes once this broker has.

use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse, TopicRef};

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// A topic's name (if known), its id, and why it was not deleted (if it was not).
type Outcome = (Option<String>, u128, Option<(ResponseError, String)>);

pub struct DeleteTopics;

impl Api for DeleteTopics {
    const KEY: ApiKey = ApiKey::DeleteTopics;
    const VERSIONS: VersionRange = versions(1, 6);
    type Request = DeleteTopicsRequest;
    type Response = DeleteTopicsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
        // v6 names topics by name or id; earlier versions by name only.
        let wanted: Vec<TopicRef> = if header.api_version >= 6 {
            request
                .topics
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => TopicRef::Name(name.to_string()),
                    None => TopicRef::Id(t.topic_id.as_u128()),
                })
                .collect()
        } else {
            request.topic_names.into_iter().map(|n| TopicRef::Name(n.to_string())).collect()
        };
        // Kafka's check: DELETE on each topic (named by id: on the topic the id names).
        let image = shard.image();
        let (wanted, denied): (Vec<TopicRef>, Vec<TopicRef>) = wanted.into_iter().partition(|w| {
            let name = match w {
                TopicRef::Name(name) => Some(name.as_str()),
                TopicRef::Id(id) => image.topic_by_id(*id).map(|t| t.name.as_str()),
            };
            name.is_none_or(|name| shard.authorized(header, AclOperation::Delete, ResourceType::Topic, name))
        });
        let refusals: Vec<Outcome> = denied
            .into_iter()
            .map(|w| {
                let failure =
                    Some((ResponseError::TopicAuthorizationFailed, "DELETE on this topic is not allowed".into()));
                match w {
                    TopicRef::Name(name) => (Some(name), 0, failure),
                    TopicRef::Id(id) => (None, id, failure),
                }
            })
            .collect();
        let count = wanted.len();
        let fallback: Vec<(Option<String>, u128)> = wanted
            .iter()
            .map(|w| match w {
                TopicRef::Name(name) => (Some(name.clone()), 0),
                TopicRef::Id(id) => (None, *id),
            })
            .collect();
        let results = match shard.controller_call(ControllerRequest::DeleteTopics { topics: wanted }).await {
            Ok(ControllerResponse::DeleteTopics(results)) if results.len() == count => results
                .into_iter()
                .map(|(name, id, result)| (name, id, result.err().map(|e| (admin_error(&e), e.message))))
                .collect(),
            Ok(other) => {
                let failure = (ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}"));
                fallback.into_iter().map(|(name, id)| (name, id, Some(failure.clone()))).collect()
            }
            Err(error) => {
                let failure = (admin_error(&error), error.message);
                fallback.into_iter().map(|(name, id)| (name, id, Some(failure.clone()))).collect::<Vec<_>>()
            }
        };
        let responses = results
            .into_iter()
            .chain(refusals)
            .map(|(name, id, failure)| {
                let result = DeletableTopicResult::default()
                    .with_name(name.as_deref().map(topic_name))
                    .with_topic_id(uuid::Uuid::from_u128(id));
                match failure {
                    Some((error, message)) => {
                        result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                    }
                    None => result,
                }
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    }
}
