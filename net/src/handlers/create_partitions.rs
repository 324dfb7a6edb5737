//! CreatePartitions (API 37), versions 0-3: adds partitions to a topic, placed like CreateTopics places them
//! (or on the replicas given). A typed controller command; the answer comes once this broker has applied it.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse, NewPartitions};

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct CreatePartitions;

impl Api for CreatePartitions {
    const KEY: ApiKey = ApiKey::CreatePartitions;
    const VERSIONS: VersionRange = versions(0, 3);
    type Request = CreatePartitionsRequest;
    type Response = CreatePartitionsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let wanted: Vec<NewPartitions> = request
            .topics
            .into_iter()
            .map(|t| NewPartitions {
                topic: t.name.to_string(),
                count: t.count,
                assignments: t
                    .assignments
                    .map(|list| list.into_iter().map(|a| a.broker_ids.into_iter().map(|id| id.0).collect()).collect()),
            })
            .collect();
        // Kafka's check: ALTER on each topic.
        let (wanted, denied): (Vec<NewPartitions>, Vec<NewPartitions>) = wanted
            .into_iter()
            .partition(|w| shard.authorized(header, AclOperation::Alter, ResourceType::Topic, &w.topic));
        let names: Vec<String> = wanted.iter().map(|w| w.topic.clone()).collect();
        let command = ControllerRequest::CreatePartitions { topics: wanted, validate_only: request.validate_only };
        let mut failures: Vec<Option<(ResponseError, String)>> = match shard.controller_call(command).await {
            Ok(ControllerResponse::CreatePartitions(answers)) if answers.len() == names.len() => {
                answers.into_iter().map(|a| a.err().map(|e| (admin_error(&e), e.message))).collect()
            }
            Ok(other) => {
                vec![
                    Some((ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}")));
                    names.len()
                ]
            }
            Err(error) => vec![Some((admin_error(&error), error.message)); names.len()],
        };
        let refusal = (ResponseError::TopicAuthorizationFailed, "ALTER on this topic is not allowed".to_string());
        failures.extend(denied.iter().map(|_| Some(refusal.clone())));
        let results = names
            .into_iter()
            .chain(denied.into_iter().map(|w| w.topic))
            .zip(failures)
            .map(|(name, failure)| {
                let result = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
                match failure {
                    Some((error, message)) => {
                        result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                    }
                    None => result,
                }
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    }
}
