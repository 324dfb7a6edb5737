//! Topic changes on the active controller: CreateTopics, DeleteTopics, CreatePartitions and the internal
//! `__consumer_offsets` topic. Each validates against the image and returns the records to commit and the
//! per-topic answers, in request order.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{broker, validate_topic_config, EffectiveConfig};
use crate::metadata::{placement, validate_topic_name, ClusterImage, MetadataRecord, NodeId, PartitionImage};

use super::commands::{AdminError, AdminErrorKind, AdminResult, CreatedTopic, NewPartitions, TopicRef, TopicSpec};

/// The topic of committed consumer offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Internal topics the broker creates itself and clients may not (`__cluster_metadata` is refused by name
/// validation). `__transaction_state` is reserved for the transaction coordinator.
pub const BROKER_CREATED_TOPICS: [&str; 2] = [OFFSETS_TOPIC, "__transaction_state"];

fn fail<T>(kind: AdminErrorKind, message: impl Into<String>) -> AdminResult<T> {
    Err(AdminError::new(kind, message))
}

/// A new random topic id.
pub fn new_topic_id() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

/// Replica lists for `count` new partitions starting at index `first`: the explicit ones if given (checked
/// against the registered brokers), otherwise placed over the active brokers.
fn replica_lists(
    image: &ClusterImage,
    first: i32,
    count: i32,
    replication_factor: i16,
    explicit: &[(i32, Vec<NodeId>)],
) -> AdminResult<Vec<PartitionImage>> {
    if !explicit.is_empty() {
        if explicit.len() != count as usize {
            return fail(AdminErrorKind::InvalidReplicaAssignment, "assignments must cover every new partition");
        }
        let mut lists = Vec::with_capacity(explicit.len());
        for (offset, (index, replicas)) in explicit.iter().enumerate() {
            if *index != first + offset as i32 {
                return fail(
                    AdminErrorKind::InvalidReplicaAssignment,
                    "assignment partition indexes must be contiguous",
                );
            }
            let unique: BTreeSet<_> = replicas.iter().collect();
            if replicas.is_empty() || unique.len() != replicas.len() {
                return fail(AdminErrorKind::InvalidReplicaAssignment, "a replica list is empty or repeats a broker");
            }
            if let Some(unknown) = replicas.iter().find(|id| !image.brokers.contains_key(id)) {
                return fail(AdminErrorKind::InvalidReplicaAssignment, format!("broker {unknown} is not registered"));
            }
            let mut partition = PartitionImage::new(replicas.clone());
            // Only active brokers may be in sync or lead.
            partition.isr.retain(|r| image.is_active_broker(*r));
            if partition.isr.is_empty() {
                partition.isr = vec![replicas[0]];
                partition.leader = crate::metadata::NO_LEADER;
            } else if !partition.isr.contains(&partition.leader) {
                partition.leader = partition.isr[0];
            }
            lists.push(partition);
        }
        return Ok(lists);
    }
    let factor = usize::try_from(replication_factor).unwrap_or(0);
    placement::place(image, count as usize, factor)
        .map(|lists| lists.into_iter().map(PartitionImage::new).collect())
        .map_err(|message| AdminError::new(AdminErrorKind::InvalidReplicationFactor, message))
}

fn check_spec(
    config: &EffectiveConfig<'_>,
    image: &ClusterImage,
    spec: &TopicSpec,
) -> AdminResult<(MetadataRecord, CreatedTopic)> {
    validate_topic_name(&spec.name).map_err(|message| AdminError::new(AdminErrorKind::InvalidTopic, message))?;
    if BROKER_CREATED_TOPICS.contains(&spec.name.as_str()) {
        // As Kafka refuses `__cluster_metadata`: made as a regular topic (a client's CreateTopics, or a Metadata
        // request auto-creating it before the controller did), `__consumer_offsets` would get default retention,
        // which without compaction deletes live groups' offsets, and any partition count a client picked.
        return fail(
            AdminErrorKind::InvalidRequest,
            format!("creation of internal topic {} is prohibited: the broker creates it", spec.name),
        );
    }
    if image.topic(&spec.name).is_some() {
        return fail(AdminErrorKind::TopicAlreadyExists, format!("topic '{}' already exists", spec.name));
    }
    let default_partitions = config.get(broker::NUM_PARTITIONS);
    let default_replication = i16::try_from(config.get(broker::DEFAULT_REPLICATION_FACTOR)).unwrap_or(i16::MAX);
    let num_partitions = match spec.num_partitions {
        -1 if spec.assignments.is_empty() => default_partitions,
        -1 => spec.assignments.len() as i32,
        n if n >= 1 => n,
        n => return fail(AdminErrorKind::InvalidPartitions, format!("number of partitions {n} must be at least 1")),
    };
    let replication_factor = if spec.replication_factor == -1 { default_replication } else { spec.replication_factor };
    if replication_factor < 1 && spec.assignments.is_empty() {
        return fail(
            AdminErrorKind::InvalidReplicationFactor,
            format!("replication factor {replication_factor} must be at least 1"),
        );
    }
    let partitions = replica_lists(image, 0, num_partitions, replication_factor, &spec.assignments)?;
    let mut configs = BTreeMap::new();
    for (key, value) in &spec.configs {
        let Some(value) = value else { continue };
        validate_topic_config(key, value)
            .map_err(|error| AdminError::new(AdminErrorKind::InvalidConfig, error.to_string()))?;
        configs.insert(key.trim().to_string(), value.trim().to_string());
    }
    let topic_id = new_topic_id();
    let created = CreatedTopic {
        topic_id,
        num_partitions: partitions.len() as i32,
        replication_factor: partitions.first().map_or(0, |p| p.replicas.len() as i16),
        configs: configs.clone(),
    };
    Ok((MetadataRecord::CreateTopic { name: spec.name.clone(), topic_id, partitions, configs }, created))
}

/// CreateTopics: one answer per spec, in order; the records of those that passed.
pub fn create(
    config: &EffectiveConfig<'_>,
    image: &ClusterImage,
    specs: &[TopicSpec],
) -> (Vec<MetadataRecord>, Vec<AdminResult<CreatedTopic>>) {
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    let mut answers = Vec::new();
    for spec in specs {
        let result = if !seen.insert(spec.name.clone()) {
            fail(AdminErrorKind::InvalidRequest, "topic named twice in one request")
        } else {
            check_spec(config, image, spec)
        };
        answers.push(result.map(|(record, created)| {
            records.push(record);
            created
        }));
    }
    (records, answers)
}

/// DeleteTopics: the resolved name and id of each, and its outcome.
#[allow(clippy::type_complexity)]
pub fn delete(
    config: &EffectiveConfig<'_>,
    image: &ClusterImage,
    topics: &[TopicRef],
) -> (Vec<MetadataRecord>, Vec<(Option<String>, u128, AdminResult<()>)>) {
    let enabled = config.get(broker::DELETE_TOPIC_ENABLE);
    let mut records: Vec<MetadataRecord> = Vec::new();
    let mut answers = Vec::new();
    for wanted in topics {
        let found = match wanted {
            TopicRef::Name(name) => image.topic(name),
            TopicRef::Id(id) => image.topic_by_id(*id),
        };
        let result = match (found, wanted) {
            _ if !enabled => fail(AdminErrorKind::TopicDeletionDisabled, "delete.topic.enable is false"),
            (Some(topic), _) if topic.name == OFFSETS_TOPIC => {
                fail(AdminErrorKind::InvalidTopic, "the internal topic __consumer_offsets cannot be deleted")
            }
            (Some(topic), _) => {
                let already =
                    records.iter().any(|r| matches!(r, MetadataRecord::DeleteTopic { name } if *name == topic.name));
                if !already {
                    records.push(MetadataRecord::DeleteTopic { name: topic.name.clone() });
                }
                Ok(())
            }
            (None, TopicRef::Id(_)) => fail(AdminErrorKind::UnknownTopicId, "no topic with this id"),
            (None, TopicRef::Name(_)) => fail(AdminErrorKind::UnknownTopicOrPartition, "no such topic"),
        };
        let name = found.map(|t| t.name.clone()).or_else(|| match wanted {
            TopicRef::Name(name) => Some(name.clone()),
            TopicRef::Id(_) => None,
        });
        let id = found.map_or(
            match wanted {
                TopicRef::Id(id) => *id,
                TopicRef::Name(_) => 0,
            },
            |t| t.topic_id,
        );
        answers.push((name, id, result));
    }
    (records, answers)
}

/// CreatePartitions: grows topics to a new total.
pub fn add_partitions(image: &ClusterImage, wanted: &[NewPartitions]) -> (Vec<MetadataRecord>, Vec<AdminResult<()>>) {
    let mut records = Vec::new();
    let mut answers = Vec::new();
    // Placement of later topics in the request counts the earlier ones.
    let mut planned = image.clone();
    for ask in wanted {
        let result = add_partitions_record(&planned, ask);
        answers.push(result.map(|record| {
            let next = planned.version + 1;
            planned.apply_entry(next, std::slice::from_ref(&record));
            records.push(record);
        }));
    }
    (records, answers)
}

fn add_partitions_record(image: &ClusterImage, ask: &NewPartitions) -> AdminResult<MetadataRecord> {
    let Some(topic) = image.topic(&ask.topic) else {
        return fail(AdminErrorKind::UnknownTopicOrPartition, format!("no topic '{}'", ask.topic));
    };
    let current = topic.partitions.len() as i32;
    if ask.count <= current {
        return fail(
            AdminErrorKind::InvalidPartitions,
            format!("topic '{}' has {current} partitions; the new count {} must be larger", ask.topic, ask.count),
        );
    }
    let replication_factor = topic.partitions.first().map_or(1, |p| p.target_replicas().len() as i16);
    let explicit: Vec<(i32, Vec<NodeId>)> = ask
        .assignments
        .clone()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| (current + i as i32, replicas))
        .collect();
    let partitions = replica_lists(image, current, ask.count - current, replication_factor, &explicit)?;
    Ok(MetadataRecord::AddPartitions { name: ask.topic.clone(), partitions })
}

/// `__consumer_offsets` with `offsets.topic.num.partitions` partitions and `offsets.topic.replication.factor`
/// replicas, capped at the active brokers (a one-node cluster gets its offsets topic too). `None` if it exists.
pub fn offsets_topic(config: &EffectiveConfig<'_>, image: &ClusterImage) -> AdminResult<Option<MetadataRecord>> {
    if image.topic(OFFSETS_TOPIC).is_some() {
        return Ok(None);
    }
    let partitions = config.get(broker::OFFSETS_TOPIC_NUM_PARTITIONS);
    let wanted = usize::try_from(config.get(broker::OFFSETS_TOPIC_REPLICATION_FACTOR)).unwrap_or(1);
    let active = image.active_brokers().count();
    if active == 0 {
        return fail(AdminErrorKind::Unavailable, "no active broker to place __consumer_offsets on");
    }
    let factor = wanted.min(active) as i16;
    let lists = replica_lists(image, 0, partitions, factor, &[])?;
    let configs = [("cleanup.policy", "compact"), ("segment.bytes", "104857600"), ("flush.policy", "always")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Some(MetadataRecord::CreateTopic {
        name: OFFSETS_TOPIC.to_string(),
        topic_id: new_topic_id(),
        partitions: lists,
        configs,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::StaticConfig;

    #[test]
    fn clients_cannot_create_internal_topics() {
        let static_config = StaticConfig::default();
        let dynamic = BTreeMap::new();
        let config = EffectiveConfig::new(&static_config, &dynamic);
        let image = ClusterImage::default();
        let spec = |name: &str| TopicSpec {
            name: name.to_string(),
            num_partitions: 1,
            replication_factor: 1,
            assignments: vec![(0, vec![1])],
            configs: vec![("retention.ms".to_string(), Some("1000".to_string()))],
        };
        let (records, answers) = create(
            &config,
            &image,
            &[spec("__consumer_offsets"), spec("__transaction_state"), spec("__cluster_metadata")],
        );
        assert!(records.is_empty());
        let kinds: Vec<_> = answers.iter().map(|a| a.as_ref().unwrap_err().kind).collect();
        assert_eq!(
            kinds,
            [AdminErrorKind::InvalidRequest, AdminErrorKind::InvalidRequest, AdminErrorKind::InvalidTopic]
        );
    }
}
