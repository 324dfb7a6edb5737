//! Partition replication on one shard: Kafka's ISR protocol.
//!
//! Each shard has a [`ReplicaManager`] for the partitions it owns. When a new metadata image arrives it makes
//! each local replica a leader or a follower ([`ReplicaManager::apply_image`]):
//! - **Leader** ([`leader::LeaderState`]): serves follower fetches, tracks each follower's log end and when it
//!   was last caught up, keeps the high watermark at the smallest log end over the ISR (never above its own
//!   durable offset, and frozen while the ISR is smaller than `min.insync.replicas`), and asks the controller
//!   to shrink or expand the ISR (AlterPartition), using a new ISR only once the controller committed it.
//! - **Follower**: pulled by this shard's fetcher for its leader ([`fetcher::Fetcher`]), which appends the
//!   leader's batches unchanged, truncates where the logs diverge (leader epochs, KIP-101/279/595), copies the
//!   log start offset and takes the leader's high watermark.
//!
//! **A follower's fetch offset is its durable offset.** It fetches again only once what it appended is durable
//! under its flush policy (fsynced for `always`), so the leader's high watermark, the minimum of the ISR's
//! fetch offsets, only covers records on disk on every in-sync replica: an acks=all acknowledgement means
//! that, at no extra message.
//!
//! Kafka bytes stay in `net`: it carries follower fetches through [`FetchTransport`] and hands the leader side
//! of a replica fetch to [`ReplicaManager::follower_fetch`].

pub mod fetcher;
pub mod leader;
mod local;
mod manager;
pub mod throttle;
mod types;

pub use fetcher::Fetcher;
pub use leader::{FollowerRead, LeaderState};
pub use local::Replica;
pub use manager::{ReplicaManager, ThrottleRates};
pub use throttle::{ReplicaPolicy, Throttle};
pub use types::*;
