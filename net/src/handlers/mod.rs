//! One file per Kafka API. Each declares its key, its versions and its handler function by implementing
//! [`api::Api`], and [`registry::APIS`] lists them: ApiVersions, decoding and dispatch all derive from that
//! one list. A handler runs on the shard that owns the connection, sends per-partition work to the owning
//! shards, group work to the group's coordinator shard and controller work to shard 0, and returns its
//! response.
//!
//! Produce and Fetch are hand-written for zero copy: Produce keeps its record sets as slices of the received
//! frame, and Fetch answers with file slices sent by `sendfile(2)`. The others use kafka-protocol's codec.
//!
//! Besides the API files: [`api`] (the handler contract), [`registry`] (the list, ApiVersions, decoding and
//! dispatch), [`config_changes`] (what the config alters share), [`group_routing`] (finding a group's
//! coordinator shard).
//!
//! Adding an API: its file here with a `mod` line below, and its line in [`registry::APIS`].

pub mod api;
pub mod config_changes;
pub mod group_routing;
pub mod registry;

pub mod alter_configs;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

pub use registry::{decode_frame, dispatch, Decoded, APIS};
