//! Typed controller commands and their answers.
//!
//! A broker turns a Kafka admin request (or its own registration, heartbeat or ISR change) into a
//! [`ControllerRequest`] and sends it to the active controller, locally or over the controller listener; the
//! controller validates it against its image, commits the records it implies and answers with a
//! [`ControllerResponse`]. Failures are typed ([`AdminError`]); `net` alone turns them into Kafka error codes.
//! Both types are serde values, since they cross the network between nodes.

use serde::{Deserialize, Serialize};

use crate::acl::{AclBinding, AclFilter};
use crate::metadata::{NodeId, PartitionImage};
use crate::scram::{ScramCredential, ScramMechanism};

/// Why the controller refused something. Each kind maps to one Kafka error code in `net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminErrorKind {
    TopicAlreadyExists,
    InvalidTopic,
    InvalidPartitions,
    InvalidReplicationFactor,
    InvalidReplicaAssignment,
    InvalidConfig,
    InvalidRequest,
    UnknownTopicOrPartition,
    UnknownTopicId,
    TopicDeletionDisabled,
    /// This node is not the active controller, or lost leadership before the change committed.
    NotController,
    StaleBrokerEpoch,
    DuplicateBrokerRegistration,
    /// A broker's stored cluster id is not the quorum's.
    InconsistentClusterId,
    /// A voter came back with another data directory than the one the quorum recorded: it lost its log.
    StaleDirectory,
    FencedLeaderEpoch,
    InvalidUpdateVersion,
    IneligibleReplica,
    NotLeaderOrFollower,
    NoReassignmentInProgress,
    /// The quorum could not be reached or did not commit in time.
    Unavailable,
    /// The metadata log could not be written.
    Storage,
    /// A request names the same resource twice (a user altered twice).
    DuplicateResource,
    /// A resource to change does not exist (a SCRAM credential to delete).
    ResourceNotFound,
    /// A SCRAM credential Kafka would refuse (iterations out of bounds, an empty user or salt).
    UnacceptableCredential,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct AdminError {
    pub kind: AdminErrorKind,
    pub message: String,
}

impl AdminError {
    pub fn new(kind: AdminErrorKind, message: impl Into<String>) -> Self {
        AdminError { kind, message: message.into() }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// What a client asked to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    pub name: String,
    /// -1: `num.partitions`.
    pub num_partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit replica lists per partition index (CreateTopics `assignments`).
    pub assignments: Vec<(i32, Vec<NodeId>)>,
    pub configs: Vec<(String, Option<String>)>,
}

/// A created topic as CreateTopics reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    pub topic_id: u128,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: std::collections::BTreeMap<String, String>,
}

/// A topic named by name or by id (DeleteTopics v6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicRef {
    Name(String),
    Id(u128),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPartitions {
    pub topic: String,
    /// The new total.
    pub count: i32,
    pub assignments: Option<Vec<Vec<NodeId>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic,
    /// A broker: `None` for the cluster-wide default (Kafka's empty resource name).
    Broker,
    /// A consumer group, by id (Kafka's group configs, KIP-848); it need not exist.
    Group,
}

/// One key's change (IncrementalAlterConfigs' operations; AlterConfigs is `Set` for every key plus
/// `replace_all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set(String),
    Delete,
    /// Adds list items that are not there yet (list-typed keys only).
    Append(String),
    /// Removes list items (list-typed keys only).
    Subtract(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub resource: ConfigResource,
    /// The topic name, the broker id as text ("" for the cluster-wide default), or the group id.
    pub name: String,
    pub ops: Vec<(String, ConfigOp)>,
    /// AlterConfigs semantics: keys not named are removed.
    pub replace_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: NodeId,
    pub incarnation_id: String,
    pub cluster_id: String,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub node_id: NodeId,
    pub broker_epoch: i64,
    /// The last metadata entry the broker has applied.
    pub metadata_offset: i64,
    pub want_shut_down: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// A leader's ISR change for one partition (Kafka's AlterPartition), checked against the partition epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    pub topic: String,
    pub partition: i32,
    pub leader: NodeId,
    pub broker_epoch: i64,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<NodeId>,
}

/// A reassignment: the target replicas, or `None` to cancel one in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Option<Vec<NodeId>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopics {
        topics: Vec<TopicSpec>,
        validate_only: bool,
    },
    DeleteTopics {
        topics: Vec<TopicRef>,
    },
    CreatePartitions {
        topics: Vec<NewPartitions>,
        validate_only: bool,
    },
    AlterConfigs {
        changes: Vec<ConfigChange>,
        validate_only: bool,
    },
    AllocateProducerIds,
    /// A voter's data directory, once it holds the committed log. `replace` accepts a new directory for a
    /// voter that lost its disk (the operator's `--rejoin-with-empty-log`).
    RegisterController {
        node_id: NodeId,
        directory_id: String,
        replace: bool,
    },
    RegisterBroker(BrokerRegistration),
    BrokerHeartbeat(BrokerHeartbeat),
    AlterPartition(AlterPartition),
    AlterReassignments {
        reassignments: Vec<Reassignment>,
    },
    ListReassignments {
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Creates `__consumer_offsets` if it is missing, with `offsets.topic.replication.factor` capped at the
    /// active brokers.
    EnsureOffsetsTopic,
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
    /// SCRAM credential changes: (user, mechanism) deletions and (user, credential) upsertions.
    AlterScram {
        deletions: Vec<(String, ScramMechanism)>,
        upsertions: Vec<(String, ScramCredential)>,
    },
}

impl ControllerRequest {
    /// The request's name, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            ControllerRequest::CreateTopics { .. } => "CreateTopics",
            ControllerRequest::DeleteTopics { .. } => "DeleteTopics",
            ControllerRequest::CreatePartitions { .. } => "CreatePartitions",
            ControllerRequest::AlterConfigs { .. } => "AlterConfigs",
            ControllerRequest::AllocateProducerIds => "AllocateProducerIds",
            ControllerRequest::RegisterController { .. } => "RegisterController",
            ControllerRequest::RegisterBroker(_) => "RegisterBroker",
            ControllerRequest::BrokerHeartbeat(_) => "BrokerHeartbeat",
            ControllerRequest::AlterPartition(_) => "AlterPartition",
            ControllerRequest::AlterReassignments { .. } => "AlterReassignments",
            ControllerRequest::ListReassignments { .. } => "ListReassignments",
            ControllerRequest::EnsureOffsetsTopic => "EnsureOffsetsTopic",
            ControllerRequest::CreateAcls { .. } => "CreateAcls",
            ControllerRequest::DeleteAcls { .. } => "DeleteAcls",
            ControllerRequest::AlterScram { .. } => "AlterScram",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerResponse {
    CreateTopics(Vec<AdminResult<CreatedTopic>>),
    /// Per requested topic: its name and id once resolved.
    DeleteTopics(Vec<(Option<String>, u128, AdminResult<()>)>),
    CreatePartitions(Vec<AdminResult<()>>),
    AlterConfigs(Vec<AdminResult<()>>),
    /// The first id of a block of [`crate::metadata::PRODUCER_ID_BLOCK`] ids.
    ProducerIds {
        first: i64,
        count: i64,
    },
    RegisterController,
    /// The broker epoch.
    RegisterBroker {
        broker_epoch: i64,
    },
    BrokerHeartbeat(HeartbeatAnswer),
    AlterPartition(PartitionImage),
    AlterReassignments(Vec<AdminResult<()>>),
    ListReassignments(Vec<OngoingReassignment>),
    EnsureOffsetsTopic,
    CreateAcls(Vec<AdminResult<()>>),
    /// Per filter, the ACLs it removed.
    DeleteAcls(Vec<Vec<AclBinding>>),
    /// Per user, in the order first named: the outcome of all of its changes.
    AlterScram(Vec<(String, AdminResult<()>)>),
}

/// An answer, and the metadata entry that holds its change (0 when nothing was committed). A forwarding
/// broker answers its client once it has applied that entry, so the client's next request sees the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub response: ControllerResponse,
    pub metadata_offset: i64,
}
