//! Per-shard counters and the Prometheus exposition built from them.
//!
//! Thread-per-core: every shard thread counts in its own thread-local `Cell`s (`counters.rs`), with no atomic,
//! lock or (once an API or topic has been seen) allocation on the hot paths. A scrape ([`gather`]) asks every
//! shard for a [`ShardSnapshot`] over the mesh (`snapshot.rs`), and [`encode`] sums or labels the snapshots
//! and writes the text exposition (`exposition.rs`).

mod counters;
mod encode;
mod exposition;
mod snapshot;
mod storage;

pub use counters::{
    is_slow_request, record_error, record_fetched, record_isr_changes, record_produce_stage, record_produced,
    record_request, register_budget, set_slow_request_threshold_ms, ApiSnapshot, InFlight, ProduceStage, TopicCounters,
    PRODUCE_STAGES,
};
pub use exposition::{classic_text, encode};
pub use snapshot::{gather, snapshot, ClusterView, HighWatermark, PartitionSnapshot, ProcessStats, ShardSnapshot};
