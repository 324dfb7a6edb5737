//! Sluice network layer: the Kafka wire protocol, client connections, and one handler per API.
//!
//! **Architecture invariant:** only this crate knows Kafka error codes (chosen in [`error`]), and only this
//! crate parses Kafka request bytes. The engine sees batches and offsets; replication sees metadata records.
//!
//! Codemap: [`server`] accepts and runs connections; [`protocol`] frames, decodes and encodes; [`wire`] holds
//! the primitives the hand-written codecs use; [`produce`] and [`fetch`] are the two hot paths, hand-written
//! for zero copy; [`handlers`] has the rest; [`shard`] is the per-core context and cross-shard calls;
//! [`response`] sends responses, file slices by `sendfile`; [`client`] is the small Kafka client the CLI and
//! the load generator use.

pub mod client;
pub mod consumer_protocol;
pub mod coordinator;
pub mod error;
pub mod fetch;
pub mod fuzz;
pub mod handlers;
pub mod produce;
pub mod protocol;
pub mod response;
pub mod server;
pub mod shard;
pub mod wire;
