//! Sluice network layer: the Kafka wire protocol, client connections, and one handler per API.
//!
//! **Architecture invariant:** only this crate knows Kafka error codes (chosen in [`error`]), and only this
//! crate parses Kafka request bytes. The engine sees batches and offsets; replication sees metadata records.
//!
//! Codemap: [`server`] accepts and runs connections; [`framing`] cuts frames out of received bytes; [`wire`]
//! holds request headers, response frames and the primitives the hand-written codecs use; [`handlers`] has
//! one file per API and the registry that decodes and dispatches them (Produce and Fetch, the two hot paths,
//! are hand-written for zero copy); [`groups`] is the group coordinator; [`shard`] is the per-core context and
//! cross-shard calls; [`response`] sends responses, file slices by `sendfile`; [`client`] is the small Kafka
//! client the CLI and the load generator use.
//!
//! The cluster's transports are here too, as `replication` defines them: [`peer`] carries the controller
//! listener's messages (Raft, controller commands, metadata fetches), [`replica_fetch`] sends followers'
//! fetches as Kafka Fetch requests, and [`cluster`] wires them to each shard.

pub mod admin;
pub mod authorize;
pub mod budget;
pub mod client;
pub mod cluster;
pub mod error;
pub mod framing;
pub mod fuzz;
pub mod groups;
pub mod handlers;
pub mod metrics;
pub mod peer;
pub mod replica_fetch;
pub mod response;
pub mod sasl;
pub mod server;
pub mod shard;
pub mod wire;
