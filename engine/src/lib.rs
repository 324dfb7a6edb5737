//! Sluice storage engine: the partition logs a shard owns.
//!
//! A partition is a directory of segments holding Kafka RecordBatch v2 bytes exactly as producers sent them
//! (with offsets and leader epoch stamped in; recompressed only for a topic whose `compression.type` names
//! another codec), sparse offset and time indexes, and atomic checkpoints. The
//! engine validates batches, assigns offsets, enforces idempotent-producer sequences, group-commits fsyncs,
//! serves reads as file slices for zero-copy sends, applies retention, and recovers after crashes.
//!
//! **Architecture invariant:** the engine never sees Kafka request bytes and knows no Kafka error codes; it
//! speaks in batches, offsets and typed errors. It depends on no other Sluice crate.
//!
//! Threading: everything here runs on one glommio shard and is `!Send`, except [`FileSlice`], whose
//! `Arc<File>` may travel to the shard that owns the client connection.

pub mod batch;
pub mod checkpoint;
pub mod clean;
pub mod codec;
pub mod config;
mod context;
pub mod epoch;
pub mod error;
pub mod fifo_lock;
pub mod fuzz;
pub mod index;
pub mod log;
pub mod manager;
pub mod prewrite;
pub mod producer;
pub mod segment;
pub mod stats;
pub mod syncfs;
pub mod types;
pub mod watch;

pub use config::{CleanupPolicy, CompactionConfig, FlushPolicy, LogConfig, TimestampType, TopicCompression};
pub use error::{BatchError, EngineError, Result, SequenceError, RECORD_ERRORS_MAX};
pub use log::{AppendInfo, AppendMode, FileSlice, PartitionLog, RecoveryReport};
pub use manager::{LogManager, ManagerOptions};
pub use types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition};
