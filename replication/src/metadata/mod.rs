//! Cluster metadata: the records the controller commits, the image they build, and where partitions go.
//!
//! Metadata is a log of [`MetadataRecord`]s with a single writer, the active controller, replicated by the
//! controller quorum ([`crate::quorum`]). Applying committed entries in order gives a [`ClusterImage`]:
//! brokers, controllers, topics, partitions with their replicas, ISR, leader and epochs, configs and the
//! producer-id allocator. Shards receive immutable snapshots (`Arc<ClusterImage>`) and never change them.
//!
//! - [`records`]: the versioned JSON records.
//! - [`image`]: the image and how records change it.
//! - [`placement`]: which brokers a new partition's replicas go to.

pub mod image;
mod names;
mod partition;
pub mod placement;
pub mod records;

pub use image::{BrokerImage, ClusterImage, SharedImage, TopicImage};
pub use names::{owner_shard, validate_topic_name, NodeId, METADATA_TOPIC, PRODUCER_ID_BLOCK};
pub use partition::{PartitionImage, NO_LEADER};
pub use records::{MetadataRecord, RecordError, RECORD_VERSION};
