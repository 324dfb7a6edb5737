//! What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: the resource types, which broker a
//! request names, and the change pipeline of both alters. Alters are typed controller commands: validated by
//! the active controller, committed to the metadata log, and applied live by every broker
//! (`PartitionLog::set_config`). A broker resource named "" is the cluster-wide default; one named by a
//! broker id is that broker's own setting. Only keys Kafka also treats as dynamic are accepted. A group
//! resource holds a consumer group's own session timeout and heartbeat interval, which its next heartbeats use.

use std::rc::Rc;

use sluice_replication::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use sluice_replication::controller::commands::{
    ConfigChange, ConfigOp, ConfigResource, ControllerRequest, ControllerResponse,
};

use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// A consumer group (Kafka's group configs, KIP-848).
pub const RESOURCE_GROUP: i8 = 32;

/// Why a change was refused, and the message for the client.
pub type Failure = (ResponseError, String);

/// Whether a broker resource name means this broker (empty means the default, which this broker shows).
pub fn is_this_broker(shard: &Shard, name: &str) -> bool {
    name.is_empty() || name.trim() == shard.settings.node_id.to_string()
}

/// Kafka's check for a config resource: `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic, on the
/// cluster for a broker, or on the group. The refusal, if the client may not.
pub fn refused(
    shard: &Shard,
    header: &RequestHeader,
    resource_type: i8,
    name: &str,
    operation: AclOperation,
) -> Option<Failure> {
    let (kind, name, error) = match resource_type {
        RESOURCE_TOPIC => (ResourceType::Topic, name, ResponseError::TopicAuthorizationFailed),
        RESOURCE_BROKER => (ResourceType::Cluster, CLUSTER_NAME, ResponseError::ClusterAuthorizationFailed),
        RESOURCE_GROUP => (ResourceType::Group, name, ResponseError::GroupAuthorizationFailed),
        _ => return None,
    };
    (!shard.authorized(header, operation, kind, name))
        .then(|| (error, format!("{operation:?} on this resource is not allowed")))
}

/// One resource's requested change.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_type: i8,
    pub name: String,
    pub ops: Vec<(String, ConfigOp)>,
    /// AlterConfigs semantics: keys not named are removed.
    pub replace: bool,
}

/// Sends every change of a known resource type the client may alter (ALTER_CONFIGS) to the controller (unless `validate_only`, it commits the
/// valid ones). One result per change, in order.
pub async fn apply(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    changes: Vec<Change>,
    validate_only: bool,
) -> Vec<(i8, String, Option<Failure>)> {
    let mut results: Vec<(i8, String, Option<Failure>)> = Vec::with_capacity(changes.len());
    let mut sent = Vec::new();
    let mut slots = Vec::new();
    for change in changes {
        if let Some(failure) = refused(shard, header, change.resource_type, &change.name, AclOperation::AlterConfigs) {
            results.push((change.resource_type, change.name, Some(failure)));
            continue;
        }
        let resource = match change.resource_type {
            RESOURCE_TOPIC => ConfigResource::Topic,
            RESOURCE_BROKER => ConfigResource::Broker,
            RESOURCE_GROUP => ConfigResource::Group,
            other => {
                let failure = (ResponseError::InvalidRequest, format!("resource type {other} is not supported"));
                results.push((change.resource_type, change.name, Some(failure)));
                continue;
            }
        };
        slots.push(results.len());
        results.push((change.resource_type, change.name.clone(), None));
        sent.push(ConfigChange { resource, name: change.name, ops: change.ops, replace_all: change.replace });
    }
    if sent.is_empty() {
        return results;
    }
    let count = sent.len();
    let answers: Vec<Option<Failure>> = match shard
        .controller_call(ControllerRequest::AlterConfigs { changes: sent, validate_only })
        .await
    {
        Ok(ControllerResponse::AlterConfigs(answers)) if answers.len() == count => {
            answers.into_iter().map(|a| a.err().map(|e| (admin_error(&e), e.message))).collect()
        }
        Ok(other) => {
            vec![Some((ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}"))); count]
        }
        Err(error) => vec![Some((admin_error(&error), error.message)); count],
    };
    for (slot, failure) in slots.into_iter().zip(answers) {
        results[slot].2 = failure;
    }
    results
}
