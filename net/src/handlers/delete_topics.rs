//! DeleteTopics (API 20), versions 1-6: by name, or from v6 by topic id. Runs on shard 0 under the
//! controller's write lock, refused while `delete.topic.enable` is false; every shard deletes its partitions
//! of the topic before the answer.

use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::config::broker;
use sluice_replication::metadata::MetadataRecord;

use super::api::{text, topic_name, versions, Api};
use super::create_topics::Failure;
use crate::error::{controller_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// A DeleteTopics outcome: name (resolved from the id if needed), id, and the failure if any.
type Deleted = (Option<String>, uuid::Uuid, Option<Failure>);

pub struct DeleteTopics;

impl Api for DeleteTopics {
    const KEY: ApiKey = ApiKey::DeleteTopics;
    const VERSIONS: VersionRange = versions(1, 6);
    type Request = DeleteTopicsRequest;
    type Response = DeleteTopicsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
        let version = header.api_version;
        // v6 names topics by name or id; earlier versions by name only.
        let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
            request.topics.into_iter().map(|t| (t.name.map(|n| n.to_string()), t.topic_id)).collect()
        } else {
            request.topic_names.into_iter().map(|n| (Some(n.to_string()), uuid::Uuid::nil())).collect()
        };
        let results: Vec<Deleted> = shard
            .run_on(0, move |shard| async move {
                let Some(controller) = shard.controller() else {
                    return wanted
                        .into_iter()
                        .map(|(n, id)| (n, id, Some((ResponseError::NotController, String::new()))))
                        .collect();
                };
                let guard = match controller.lock().await {
                    Ok(guard) => guard,
                    Err(error) => {
                        let failure = (controller_error(&error), error.to_string());
                        return wanted.into_iter().map(|(n, id)| (n, id, Some(failure.clone()))).collect();
                    }
                };
                let image = controller.image();
                let enabled = shard.with_config(&image, |config| config.get(broker::DELETE_TOPIC_ENABLE));
                let mut records = Vec::new();
                let mut results = Vec::new();
                for (name, id) in wanted {
                    let found = match &name {
                        Some(name) => image.topic(name),
                        None => image.topic_by_id(id.as_u128()),
                    };
                    let result = match found {
                        _ if !enabled => {
                            Some((ResponseError::TopicDeletionDisabled, "delete.topic.enable is false".into()))
                        }
                        Some(topic)
                            if records
                                .iter()
                                .any(|r| matches!(r, MetadataRecord::DeleteTopic { name } if *name == topic.name)) =>
                        {
                            None
                        }
                        Some(topic) => {
                            records.push(MetadataRecord::DeleteTopic { name: topic.name.clone() });
                            None
                        }
                        None if name.is_none() => Some((ResponseError::UnknownTopicId, "no topic with this id".into())),
                        None => Some((ResponseError::UnknownTopicOrPartition, "no such topic".into())),
                    };
                    let resolved_name = name.or_else(|| found.map(|t| t.name.clone()));
                    let resolved_id = found.map_or(id, |t| uuid::Uuid::from_u128(t.topic_id));
                    results.push((resolved_name, resolved_id, result));
                }
                if !records.is_empty() {
                    match shard.commit_and_publish(&controller, guard, records).await {
                        Ok(_) => {}
                        Err(error) => {
                            let failure = (controller_error(&error), error.to_string());
                            return results.into_iter().map(|(n, id, _)| (n, id, Some(failure.clone()))).collect();
                        }
                    }
                }
                results
            })
            .await;
        let responses = results
            .into_iter()
            .map(|(name, id, error)| {
                let result =
                    DeletableTopicResult::default().with_name(name.as_deref().map(topic_name)).with_topic_id(id);
                match error {
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
