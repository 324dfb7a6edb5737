//! Metadata (API 3), versions 0-12: the live (unfenced) brokers, a controller id admin requests can go to,
//! the cluster id, and for each topic its partitions with leader, leader epoch, replicas, ISR and offline
//! replicas, all from this shard's read copy of the metadata image. Every broker applies the same committed
//! log in order, so leader epochs never go back from any of them. A partition without a leader answers
//! LEADER_NOT_AVAILABLE. Unknown topics are created (through the controller) when the request allows it and
//! `auto.create.topics.enable` is on.

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use sluice_replication::config::broker;
use sluice_replication::metadata::{ClusterImage, TopicImage};

use super::api::{text, topic_name, versions, Api};
use super::create_topics;
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct Metadata;

impl Api for Metadata {
    const KEY: ApiKey = ApiKey::Metadata;
    const VERSIONS: VersionRange = versions(0, 12);
    type Request = MetadataRequest;
    type Response = MetadataResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: MetadataRequest) -> MetadataResponse {
        // v0: an empty list means every topic; v1+: null means every topic.
        let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
            None => None,
            Some(list) if list.is_empty() && header.api_version == 0 => None,
            Some(list) => Some(list.into_iter().map(|t| (t.name.map(|n| n.to_string()), t.topic_id)).collect()),
        };
        let cluster_operations = if request.include_cluster_authorized_operations {
            shard.authorized_operations(header, ResourceType::Cluster, CLUSTER_NAME)
        } else {
            NOT_REQUESTED
        };
        let topic_operations = |name: &str| {
            if request.include_topic_authorized_operations {
                shard.authorized_operations(header, ResourceType::Topic, name)
            } else {
                NOT_REQUESTED
            }
        };
        // Kafka's rules: a topic the client may not DESCRIBE is left out of "every topic" and answered
        // TOPIC_AUTHORIZATION_FAILED when named, whether or not it exists; a missing one is created only with
        // CREATE on the cluster or on the topic.
        let may_describe = |name: &str| shard.authorized(header, AclOperation::Describe, ResourceType::Topic, name);
        let may_create = |name: &str| {
            shard.authorized_on_cluster(header, AclOperation::Create)
                || shard.authorized(header, AclOperation::Create, ResourceType::Topic, name)
        };
        let auto_create_allowed = header.api_version < 4 || request.allow_auto_topic_creation;
        let mut image = shard.image();
        if let Some(requested) = &requested {
            let missing: Vec<String> = requested
                .iter()
                .filter_map(|(name, _)| name.clone())
                .filter(|name| image.topic(name).is_none() && may_describe(name) && may_create(name))
                .collect();
            let enabled = shard.with_config(&image, |config| config.get(broker::AUTO_CREATE_TOPICS_ENABLE));
            if !missing.is_empty() && auto_create_allowed && enabled {
                create_topics::auto_create(shard, missing).await;
                image = shard.image();
            }
        }
        let refused = |name: Option<&str>, topic_id: uuid::Uuid, error: ResponseError| {
            MetadataResponseTopic::default()
                .with_error_code(error.code())
                .with_name(name.map(topic_name))
                .with_topic_id(topic_id)
        };
        let topics: Vec<MetadataResponseTopic> = match requested {
            None => image
                .topics
                .values()
                .filter(|topic| may_describe(&topic.name))
                .map(|topic| describe_topic(&image, topic, topic_operations(&topic.name)))
                .collect(),
            Some(requested) => requested
                .into_iter()
                .map(|(name, topic_id)| {
                    let found = match &name {
                        Some(name) => image.topic(name),
                        None => image.topic_by_id(topic_id.as_u128()),
                    };
                    let denied = match (&name, found) {
                        (Some(name), _) => !may_describe(name),
                        (None, Some(topic)) => !may_describe(&topic.name),
                        (None, None) => false,
                    };
                    match found {
                        _ if denied => refused(name.as_deref(), topic_id, ResponseError::TopicAuthorizationFailed),
                        Some(topic) => describe_topic(&image, topic, topic_operations(&topic.name)),
                        None => {
                            let error = match &name {
                                Some(name) if sluice_replication::metadata::validate_topic_name(name).is_err() => {
                                    ResponseError::InvalidTopicException
                                }
                                Some(_) => ResponseError::UnknownTopicOrPartition,
                                None => ResponseError::UnknownTopicId,
                            };
                            refused(name.as_deref(), topic_id, error)
                        }
                    }
                })
                .collect(),
        };
        let brokers = image
            .brokers
            .values()
            .filter(|broker| !broker.fenced)
            .map(|broker| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(broker.node_id))
                    .with_host(text(&broker.host))
                    .with_port(broker.port)
                    .with_rack(broker.rack.as_deref().map(text))
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(text(&image.cluster_id)))
            .with_controller_id(BrokerId(image.controller_id))
            .with_topics(topics)
            .with_cluster_authorized_operations(cluster_operations)
    }
}

/// Kafka's "not requested" in the authorized-operation bit sets (KIP-430).
pub const NOT_REQUESTED: i32 = i32::MIN;

/// One topic as Metadata describes it. Public for the criterion bench.
pub fn describe_topic(image: &ClusterImage, topic: &TopicImage, authorized_operations: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, partition)| {
            let offline: Vec<BrokerId> = partition
                .replicas
                .iter()
                .copied()
                .filter(|replica| image.brokers.get(replica).is_none_or(|b| b.fenced))
                .map(BrokerId)
                .collect();
            let error = if partition.is_offline() { ResponseError::LeaderNotAvailable.code() } else { 0 };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(partition.leader))
                .with_leader_epoch(partition.leader_epoch)
                .with_replica_nodes(partition.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(partition.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(uuid::Uuid::from_u128(topic.topic_id))
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}
