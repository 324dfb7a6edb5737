//! The group coordinator: consumer groups (the classic protocol and KIP-848) and committed offsets, on the
//! shard that owns each group's `__consumer_offsets` partition.
//!
//! Files, bottom up, each using only those before it: `consumer_state.rs` (KIP-848 per-group state, plain
//! data), `table.rs` (the group table and what a group holds), `store.rs` (versioned records in
//! `__consumer_offsets`, replay and trimming), then `classic.rs` (join, sync, heartbeat, leave, expiry),
//! `consumer.rs` (ConsumerGroupHeartbeat) and `offsets.rs` (commit, fetch, delete, expiry of offsets).
//! Handlers reach it through `Shard::coordinator` on the group's coordinator shard.

mod classic;
mod consumer;
mod consumer_state;
mod offsets;
mod store;
mod table;

pub use classic::JoinRequest;
pub use consumer_state::{
    ConsumerGroupState, ConsumerMember, ConsumerProtocolConfig, HeartbeatOutcome, HeartbeatRequest, TopicPartitionName,
};
pub use store::{LoadError, Replayed, ReplayedGroup, RECORD_VERSION};
pub use table::{
    partition_for_group, CommittedOffset, Coordinator, CoordinatorLog, Group, GroupConfig, GroupDescription,
    GroupOffsets, GroupProtocol, GroupResult, GroupState, JoinOutcome, MemberDescription, SyncOutcome, OFFSETS_TOPIC,
};
