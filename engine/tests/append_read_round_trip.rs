//! Batches from a real Kafka client encoder and from our builder go in, and the same bytes (with offsets and
//! leader epoch stamped) come out; offsets are contiguous from 0 and per-partition order holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice_engine::batch;
use sluice_engine::{AppendMode, LeaderEpoch, LogConfig, Offset};

fn client_batch(first_key: usize, count: usize, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut headers = indexmap::IndexMap::new();
            headers.insert("trace".to_string().into(), Some(Bytes::from(format!("t{i}"))));
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: 1_700_000_000_000 + (first_key + i) as i64,
                key: Some(Bytes::from(format!("key-{}", first_key + i))),
                value: Some(Bytes::from(vec![b'x'; 200])),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

#[test]
fn client_encoded_batches_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        let mut expected = Vec::new();
        for (i, compression) in [Compression::None, Compression::None, Compression::Gzip].into_iter().enumerate() {
            let bytes = client_batch(i * 10, 10, compression);
            let info = log.append(bytes.clone(), AppendMode::Client { leader_epoch: LeaderEpoch(3) }).await.unwrap();
            assert_eq!(info.base_offset, Offset(i as i64 * 10), "offsets are contiguous from 0");
            assert_eq!(info.last_offset, Offset(i as i64 * 10 + 9));
            assert!(!info.duplicate);
            // The encoder may emit several batches; each gets the next offsets.
            let mut next = info.base_offset.0;
            for mut one in split_batches(&bytes) {
                let records = batch::peek_header(&one).unwrap().records_count.get() as i64;
                batch::stamp_offset_and_epoch(&mut one, next, 3);
                next += records;
                expected.extend_from_slice(&one);
            }
        }
        assert_eq!(log.log_end_offset(), Offset(30));
        let read = read_all(&log, 0).await;
        assert!(read == expected, "stored bytes are the client's bytes with offsets stamped");
        // The client decoder reads them back (the gzip batch too): offsets, keys and headers intact.
        let mut buf = Bytes::from(read);
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
        let records: Vec<&Record> = sets.iter().flat_map(|s| s.records.iter()).collect();
        assert_eq!(records.len(), 30);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.offset, i as i64);
            assert_eq!(record.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(record.timestamp, 1_700_000_000_000 + i as i64);
            assert_eq!(record.partition_leader_epoch, 3);
            let (name, value) = record.headers.iter().next().unwrap();
            assert_eq!(name.as_str(), "trace");
            assert_eq!(value.as_deref(), Some(format!("t{}", i % 10).as_bytes()));
        }
    });
}

#[test]
fn reads_start_at_the_batch_holding_the_offset_and_respect_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { index_interval_bytes: 1024, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        let stored = append_batches(&log, 50, 10, 100).await;
        let end = log.log_end_offset();
        assert_eq!(end, Offset(500));
        // Mid-batch: the batch that holds offset 257 is the one starting at 250.
        let slice = log.read(Offset(257), 1, end).await.unwrap().unwrap();
        assert_eq!(slice.first_offset, Offset(250));
        assert_eq!(slice.len as usize, stored[25].len(), "the first batch is whole even past max_bytes");
        // max_bytes bounds the slice to whole batches.
        let bytes = log.read_bytes(Offset(0), stored[0].len() * 3 + 10, end).await.unwrap();
        assert_eq!(split_batches(&bytes), stored[..3].to_vec());
        // The upper bound (high watermark) hides batches at or past it.
        let bytes = log.read_bytes(Offset(100), 1 << 20, Offset(130)).await.unwrap();
        assert_eq!(split_batches(&bytes), stored[10..13].to_vec());
        assert!(log.read(Offset(130), 1 << 20, Offset(130)).await.unwrap().is_none());
        // Out of range on either side is an error, the end itself is an empty read.
        assert!(log.read(Offset(501), 100, end).await.is_err());
        assert!(log.read(end, 100, end).await.unwrap().is_none());
        // Per-partition order across partitions.
        let other = open(&manager, 1, LogConfig::default()).await;
        let other_stored = append_batches(&other, 5, 2, 10).await;
        assert_eq!(split_batches(&read_all(&other, 0).await), other_stored);
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
    });
}

#[test]
fn a_slice_is_cut_to_the_whole_batches_that_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { index_interval_bytes: 1024, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        let stored = append_batches(&log, 50, 10, 100).await;
        let end = log.log_end_offset();
        let batch_bytes = stored[0].len();
        let slice = log.read(Offset(100), 1 << 20, end).await.unwrap().unwrap();
        assert_eq!(slice.len as usize, batch_bytes * 40);
        // What fits is a prefix of whole batches, from the same place in the same file.
        let cut = log.slice_prefix(&slice, batch_bytes * 7 + batch_bytes / 2).await.unwrap().unwrap();
        assert_eq!((cut.position, cut.first_offset), (slice.position, slice.first_offset));
        assert_eq!(cut.len as usize, batch_bytes * 7);
        // Exactly one batch, and a slice that already fits, are kept as they are.
        let one = log.slice_prefix(&slice, batch_bytes).await.unwrap().unwrap();
        assert_eq!(one.len as usize, batch_bytes);
        let whole = log.slice_prefix(&slice, 1 << 20).await.unwrap().unwrap();
        assert_eq!(whole.len, slice.len);
        // Less than its first batch: nothing, since only a fetch's first batch may pass the limit.
        assert!(log.slice_prefix(&slice, batch_bytes - 1).await.unwrap().is_none());
    });
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 8 * 1024, ..LogConfig::default() };
        let log = open(&manager, 0, config.clone()).await;
        let stored = append_batches(&log, 40, 5, 200).await;
        assert!(log.segment_count() > 5, "rolled into {} segments", log.segment_count());
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
        // A clean shutdown and reopen keeps everything, with no recovery scan.
        manager.shutdown().await.unwrap();
        drop(log);
        let manager = common::manager(&path, true);
        let log = open(&manager, 0, config).await;
        assert_eq!(log.recovery_report().scanned_bytes, 0);
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
        let more = append_batches(&log, 3, 5, 200).await;
        assert_eq!(more.len(), 3);
        assert_eq!(log.log_end_offset(), Offset(215));
    });
}

#[test]
fn rejected_batches_get_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { max_message_bytes: 2_000, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        let good = batch::simple_batch(2, 10, 0);
        let mut corrupt = good.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let too_large = batch::simple_batch(20, 200, 0);
        for (bytes, want) in [
            (corrupt, "CRC"),
            (too_large, "max.message.bytes"),
            (good[..good.len() - 3].to_vec(), "truncated"),
            (Vec::new(), "no record batch"),
        ] {
            let error = log.append(bytes, CLIENT).await.unwrap_err().to_string();
            assert!(error.contains(want), "{error} should mention {want}");
        }
        assert_eq!(log.log_end_offset(), Offset(0));
        log.append(good, CLIENT).await.unwrap();
        assert_eq!(log.log_end_offset(), Offset(2));
    });
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { timestamp_type: sluice_engine::TimestampType::LogAppendTime, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        let info = log.append(batch::simple_batch(3, 10, 5), CLIENT).await.unwrap();
        assert!(info.log_append_time_ms > 1_600_000_000_000);
        let bytes = read_all(&log, 0).await;
        let header = batch::validate(&bytes, usize::MAX).expect("CRC recomputed after the rewrite");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp.get(), info.log_append_time_ms);
    });
}

#[test]
fn acks_all_waits_for_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        manager.spawn_background();
        let logs = [open(&manager, 0, LogConfig::default()).await, open(&manager, 1, LogConfig::default()).await];
        let mut waits = Vec::new();
        for i in 0..200 {
            let log = logs[i % 2].clone();
            waits.push(glommio::spawn_local(async move {
                let info = log.append(batch::simple_batch(1, 100, 0), CLIENT).await.unwrap();
                log.wait_durable(info.last_offset.next()).await.unwrap();
                assert!(log.durable_offset() > info.last_offset);
            }));
        }
        for wait in waits {
            wait.await;
        }
        let rounds = manager.flush_rounds();
        assert!(rounds > 0 && rounds < 200, "group commit used {rounds} rounds for 200 appends");
    });
}
