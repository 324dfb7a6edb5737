//! `__consumer_offsets` as the coordinator writes it: committed offsets are rebuilt from the log by a fresh
//! coordinator, also after the log cleaner compacted the partition to about its live state, and offsets of
//! groups that stayed empty past `offsets.retention.minutes` expire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sluice_engine::{CleanupPolicy, FlushPolicy, LogConfig, LogManager, ManagerOptions, TopicPartition};
use sluice_net::groups::{partition_for_group, Coordinator, GroupConfig, OFFSETS_TOPIC};

fn config(retention_ms: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        min_session_timeout_ms: 1,
        max_session_timeout_ms: 1_000_000,
        max_size: 1000,
        offset_metadata_max_bytes: 4096,
        offsets_retention_ms: retention_ms,
    }
}

async fn coordinator(manager: &LogManager, retention_ms: i64) -> std::rc::Rc<Coordinator> {
    let coordinator = Coordinator::new(config(retention_ms));
    coordinator.set_offsets_partitions(1);
    let log_config = LogConfig {
        flush_policy: FlushPolicy::Always,
        segment_bytes: 1 << 20,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        ..LogConfig::default()
    };
    let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
    let log = match manager.get(&tp) {
        Some(log) => log,
        None => manager.open_log(&tp, log_config).await.unwrap(),
    };
    log.set_high_watermark_follows_durable(true);
    coordinator.load_partition(0, log, sluice_engine::LeaderEpoch(0)).await.unwrap();
    coordinator
}

#[test]
fn offsets_are_rebuilt_compacted_and_expired() {
    assert_eq!(partition_for_group("any", 1), 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    ex.run(async move {
        let manager = LogManager::new(&path, ManagerOptions::default(), false);
        manager.spawn_background();
        let first = coordinator(&manager, i64::MAX / 2).await;
        // Twenty commits of the same 1000 partitions: the cleaner keeps only the latest of each.
        let rounds = 20;
        for round in 0..rounds {
            let offsets = (0..1000).map(|p| ("t".to_string(), p, round * 10 + i64::from(p), -1, None)).collect();
            let errors = first.commit("g", -1, "", offsets).await;
            assert!(errors.iter().all(Option::is_none), "{errors:?}");
        }
        let log = manager.get(&TopicPartition::new(OFFSETS_TOPIC, 0)).unwrap();
        log.roll_active().await.unwrap();
        let stats = log.clean(sluice_engine::types::now_ms(), 16 << 20, true).await.unwrap().unwrap();
        // Live state is 1000 offsets and one group record; everything older went.
        assert!(stats.records_removed >= 19 * 1000, "{stats:?}");
        assert!(log.size_bytes() < 200_000, "{} bytes after cleaning: {stats:?}", log.size_bytes());

        // A fresh coordinator rebuilds the same offsets from what is left.
        let second = coordinator(&manager, i64::MAX / 2).await;
        let wanted = Some(vec![("t".to_string(), 0), ("t".to_string(), 999), ("u".to_string(), 0)]);
        let fetched = second.fetch_offsets("g", wanted).unwrap();
        let last = (rounds - 1) * 10;
        assert_eq!(fetched[0].2.as_ref().map(|o| o.offset), Some(last));
        assert_eq!(fetched[1].2.as_ref().map(|o| o.offset), Some(last + 999));
        assert_eq!(fetched[2].2, None);

        // Retention: with 0 ms, the empty group's offsets expire and stay expired after a reload.
        let third = coordinator(&manager, 0).await;
        glommio::timer::sleep(Duration::from_millis(5)).await;
        third.expire_offsets().await;
        assert!(third.fetch_offsets("g", None).unwrap().is_empty());
        let fourth = coordinator(&manager, i64::MAX / 2).await;
        assert!(fourth.fetch_offsets("g", None).unwrap().is_empty());
        manager.shutdown().await.unwrap();
    });
}

/// What kcat once produced into `__consumer_offsets` (a value that is not JSON) makes the partition unreadable:
/// a fresh coordinator refuses it instead of taking the record for a tombstone and loading the rest, and none of
/// its groups is installed.
#[test]
fn a_partition_with_an_unreadable_record_is_refused_not_half_loaded() {
    use sluice_engine::batch::{BatchBuilder, RecordSpec};
    use sluice_engine::{AppendMode, LeaderEpoch};
    use sluice_net::error::ResponseError;
    use sluice_net::groups::LoadError;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    ex.run(async move {
        let manager = LogManager::new(&path, ManagerOptions::default(), false);
        manager.spawn_background();
        let first = coordinator(&manager, i64::MAX / 2).await;
        let commit = |offset: i64| vec![("t".to_string(), 0, offset, -1, None)];
        assert!(first.commit("g", -1, "", commit(5)).await.iter().all(Option::is_none));
        let log = manager.get(&TopicPartition::new(OFFSETS_TOPIC, 0)).unwrap();
        let mut builder = BatchBuilder::new();
        let key = br#"{"type":"Offset","version":1,"group":"g","topic":"t","partition":0}"#;
        builder.push(&RecordSpec { key: Some(key), value: Some(b"hello"), headers: &[], timestamp_ms: 1 });
        let unreadable = log.append(builder.finish(), AppendMode::Coordinator { leader_epoch: LeaderEpoch(0) });
        let unreadable_offset = unreadable.await.unwrap().base_offset.0;
        assert!(first.commit("h", -1, "", commit(7)).await.iter().all(Option::is_none));

        let second = Coordinator::new(config(i64::MAX / 2));
        second.set_offsets_partitions(1);
        match second.load_partition(0, log.clone(), LeaderEpoch(0)).await {
            Err(LoadError::Corrupt { offset, .. }) => assert_eq!(offset, unreadable_offset),
            other => panic!("expected the partition to be refused, got {other:?}"),
        }
        assert!(second.describe("g").is_none() && second.describe("h").is_none(), "groups were half loaded");
        assert_eq!(second.fetch_offsets("g", None).unwrap_err(), ResponseError::CoordinatorNotAvailable);
        let refused = second.commit("g", -1, "", commit(9)).await;
        assert_eq!(refused, vec![Some(ResponseError::CoordinatorNotAvailable)]);
        assert!(second.holds_partition(0), "a refused partition is not read again with every image");
        // Its leadership moves away: the refusal goes with it.
        second.unload_partition(0);
        assert_eq!(second.fetch_offsets("g", None).unwrap_err(), ResponseError::NotCoordinator);
        manager.shutdown().await.unwrap();
    });
}
