//! The controller: the single writer of the metadata log.
//!
//! Runs on shard 0. It keeps the metadata log in the engine partition `__cluster_metadata-0` (flush policy
//! `always`, kept forever), replays it at startup into a [`ClusterImage`], and commits new records: validate
//! against the current image under the write lock, append, wait until durable, apply, publish. Callers then
//! broadcast the new image to every shard.
//!
//! Single-broker mode commits locally. A clustered controller will put the same records through a Raft
//! quorum (DESIGN.md §2) and apply them once committed; the interface (`lock`, `commit`) stays.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::{Semaphore, StaticPermit};
use sluice_engine::batch::{self, BatchBuilder, RecordSpec};
use sluice_engine::{types::now_ms, TopicPartition};
use sluice_engine::{AppendMode, EngineError, FlushPolicy, LeaderEpoch, LogConfig, LogManager, Offset, PartitionLog};

use crate::metadata::{BrokerInfo, ClusterImage, MetadataRecord, SharedImage, METADATA_TOPIC, PRODUCER_ID_BLOCK};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("metadata log: {0}")]
    Engine(#[from] EngineError),
    #[error("metadata log record at offset {offset} is unreadable: {reason}")]
    Corrupt { offset: i64, reason: String },
    #[error("the controller is shutting down")]
    Closed,
}

/// Held while validating and committing, so every change is checked against the image it applies to.
pub struct WriteGuard {
    _permit: StaticPermit,
}

pub struct Controller {
    log: Rc<PartitionLog>,
    image: RefCell<SharedImage>,
    write_lock: Rc<Semaphore>,
    next_producer_id: Cell<i64>,
    producer_id_block_end: Cell<i64>,
}

/// Bytes read per step while replaying the metadata log.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

fn metadata_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: 16 << 20,
        flush_policy: FlushPolicy::Always,
        ..LogConfig::default()
    }
}

impl Controller {
    /// Opens (or creates) the metadata log, replays it, and registers this broker. A new cluster gets its id
    /// as its first record.
    pub async fn open(manager: &LogManager, local: BrokerInfo) -> Result<Controller, ControllerError> {
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let log = match manager.get(&tp) {
            Some(log) => log,
            None => manager.open_log(&tp, metadata_log_config()).await?,
        };
        log.set_high_watermark_follows_durable(true);
        let mut image = ClusterImage { controller_id: local.node_id, ..ClusterImage::default() };
        let mut position = log.log_start_offset();
        let end = log.log_end_offset();
        while position < end {
            let bytes = log.read_bytes(position, REPLAY_CHUNK_BYTES, end).await?;
            let batches = batch::split_batches(&bytes);
            if batches.is_empty() {
                return Err(ControllerError::Corrupt { offset: position.0, reason: "no whole batch".into() });
            }
            for one in batches {
                let records = batch::records(one)
                    .ok_or(ControllerError::Corrupt { offset: position.0, reason: "records do not parse".into() })?;
                for record in records {
                    let value = record.value.unwrap_or_default();
                    let decoded = MetadataRecord::decode(value).map_err(|error| ControllerError::Corrupt {
                        offset: record.offset,
                        reason: error.to_string(),
                    })?;
                    image.apply(&decoded);
                    position = Offset(record.offset + 1);
                }
            }
        }
        image.brokers.insert(local.node_id, local);
        let next_block = image.next_producer_id_block;
        let controller = Controller {
            log,
            image: RefCell::new(Arc::new(image)),
            write_lock: Rc::new(Semaphore::new(1)),
            next_producer_id: Cell::new(next_block),
            producer_id_block_end: Cell::new(next_block),
        };
        if controller.image().cluster_id.is_empty() {
            let guard = controller.lock().await?;
            let cluster_id = new_cluster_id();
            controller.commit(&guard, vec![MetadataRecord::ClusterId { cluster_id }]).await?;
        }
        Ok(controller)
    }

    pub fn image(&self) -> SharedImage {
        self.image.borrow().clone()
    }

    pub async fn lock(&self) -> Result<WriteGuard, ControllerError> {
        let permit =
            Semaphore::acquire_static_permit(&self.write_lock, 1).await.map_err(|_| ControllerError::Closed)?;
        Ok(WriteGuard { _permit: permit })
    }

    /// Appends `records` as one batch, waits until it is durable, and applies them. Returns the new image.
    pub async fn commit(
        &self,
        _guard: &WriteGuard,
        records: Vec<MetadataRecord>,
    ) -> Result<SharedImage, ControllerError> {
        if records.is_empty() {
            return Ok(self.image());
        }
        let encoded: Vec<Vec<u8>> = records.iter().map(MetadataRecord::encode).collect();
        let now = now_ms();
        let mut builder = BatchBuilder::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() + 256);
        for value in &encoded {
            builder.push(&RecordSpec { key: None, value: Some(value), headers: &[], timestamp_ms: now });
        }
        let info = self.log.append(builder.finish(), AppendMode::Coordinator { leader_epoch: LeaderEpoch(0) }).await?;
        self.log.wait_durable(info.last_offset.next()).await?;
        let mut image = (*self.image()).clone();
        for record in &records {
            image.apply(record);
        }
        let image = Arc::new(image);
        *self.image.borrow_mut() = image.clone();
        Ok(image)
    }

    /// A new producer id (KIP-98). Ids come from blocks whose end is committed before any id is handed out,
    /// so no id is reused after a crash.
    pub async fn allocate_producer_id(&self) -> Result<i64, ControllerError> {
        let guard = self.lock().await?;
        if self.next_producer_id.get() >= self.producer_id_block_end.get() {
            let start = self.image().next_producer_id_block.max(self.next_producer_id.get());
            let end = start + PRODUCER_ID_BLOCK;
            self.commit(&guard, vec![MetadataRecord::ProducerIdBlock { next_block_start: end }]).await?;
            self.next_producer_id.set(start);
            self.producer_id_block_end.set(end);
        }
        let id = self.next_producer_id.get();
        self.next_producer_id.set(id + 1);
        Ok(id)
    }
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22).map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char).collect()
}

/// A new random topic id.
pub fn new_topic_id() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metadata::PartitionImage;
    use sluice_engine::ManagerOptions;
    use std::collections::BTreeMap;

    fn broker() -> BrokerInfo {
        BrokerInfo { node_id: 0, host: "localhost".into(), port: 9092, rack: None }
    }

    #[test]
    fn metadata_survives_restart_and_producer_ids_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async move {
            let (cluster_id, ids) = {
                let manager = LogManager::new(&path, ManagerOptions::default(), false);
                manager.spawn_background();
                let controller = Controller::open(&manager, broker()).await.unwrap();
                let guard = controller.lock().await.unwrap();
                let record = MetadataRecord::CreateTopic {
                    name: "t".into(),
                    topic_id: new_topic_id(),
                    partitions: vec![PartitionImage::new(vec![0]); 3],
                    configs: BTreeMap::new(),
                };
                controller.commit(&guard, vec![record]).await.unwrap();
                drop(guard);
                let a = controller.allocate_producer_id().await.unwrap();
                let b = controller.allocate_producer_id().await.unwrap();
                manager.shutdown().await.unwrap();
                (controller.image().cluster_id.clone(), vec![a, b])
            };
            assert_eq!(ids, vec![0, 1]);
            let manager = LogManager::new(&path, ManagerOptions::default(), false);
            manager.spawn_background();
            let controller = Controller::open(&manager, broker()).await.unwrap();
            let image = controller.image();
            assert_eq!(image.cluster_id, cluster_id);
            assert_eq!(image.cluster_id.len(), 22);
            assert_eq!(image.topic("t").unwrap().partitions.len(), 3);
            assert!(controller.allocate_producer_id().await.unwrap() >= PRODUCER_ID_BLOCK);
            manager.shutdown().await.unwrap();
        });
    }
}
