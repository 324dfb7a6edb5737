//! A topic whose `compression.type` names a codec: client batches in that codec are stored byte for byte as
//! sent, batches in another are recompressed with their records, offsets, timestamps and producer sequence
//! intact, replicated batches are never touched, and a compression bomb is refused before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::records::{
    Compression as KafkaCompression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_engine::batch::{self, Compression};
use sluice_engine::{AppendMode, BatchError, EngineError, LeaderEpoch, LogConfig, Offset, TopicCompression};

fn records(count: usize, producer_id: i64, first_sequence: i32, value: &[u8]) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while sequence - offset stays the same.
            sequence: first_sequence + i as i32,
            timestamp: 1_700_000_000_000 + 3 * i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: [("trace".to_string().into(), Some(Bytes::from(format!("t{i}"))))].into_iter().collect(),
        })
        .collect()
}

fn encode(records: &[Record], compression: KafkaCompression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.to_vec()
}

fn zstd_topic() -> LogConfig {
    LogConfig { compression: TopicCompression::Codec(Compression::Zstd), ..LogConfig::default() }
}

#[test]
fn batches_in_the_topic_codec_are_kept_and_the_others_recompressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, zstd_topic()).await;
        let value = b"a value that compresses ".repeat(8);
        let mut sent = Vec::new();
        for codec in [KafkaCompression::Zstd, KafkaCompression::Lz4, KafkaCompression::None, KafkaCompression::Gzip] {
            let batch = encode(&records(10, -1, 0, &value), codec);
            let info = log.append(batch.clone(), CLIENT).await.unwrap();
            assert_eq!(info.base_offset, Offset(sent.len() as i64 * 10));
            sent.push(batch);
        }
        let stored = split_batches(&read_all(&log, 0).await);
        assert_eq!(stored.len(), 4);
        // The zstd batch: byte for byte what was sent, offsets stamped.
        let mut expected = sent[0].clone();
        batch::stamp_offset_and_epoch(&mut expected, 0, 0);
        assert!(stored[0] == expected, "a batch in the topic's codec is stored as sent");
        for (i, stored) in stored.iter().enumerate() {
            let header = batch::validate(stored, usize::MAX).unwrap();
            assert_eq!(header.compression(), Some(Compression::Zstd), "batch {i}");
            let original = batch::peek_header(&sent[i]).unwrap();
            assert_eq!(header.records_count.get(), original.records_count.get());
            assert_eq!(header.base_timestamp.get(), original.base_timestamp.get());
            assert_eq!(header.max_timestamp.get(), original.max_timestamp.get());
        }
        let mut bytes = Bytes::from(stored.concat());
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let read: Vec<&Record> = sets.iter().flat_map(|set| set.records.iter()).collect();
        assert_eq!(read.len(), 40);
        for (i, record) in read.iter().enumerate() {
            assert_eq!(record.offset, i as i64);
            assert_eq!(record.timestamp, 1_700_000_000_000 + 3 * (i % 10) as i64);
            assert_eq!(record.key.as_deref(), Some(format!("key-{}", i % 10).as_bytes()));
            assert_eq!(record.value.as_deref(), Some(&value[..]));
            assert_eq!(record.headers.values().next().unwrap().as_deref(), Some(format!("t{}", i % 10).as_bytes()));
        }

        // A follower stores the leader's bytes as they are, whatever its topic config says.
        let follower = open(&manager, 1, zstd_topic()).await;
        let mut lz4 = encode(&records(5, -1, 0, &value), KafkaCompression::Lz4);
        batch::stamp_offset_and_epoch(&mut lz4, 0, 0);
        follower.append(lz4.clone(), AppendMode::Replica).await.unwrap();
        assert!(read_all(&follower, 0).await == lz4);
    });
}

#[test]
fn a_recompressed_idempotent_batch_keeps_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, zstd_topic()).await;
        let first = encode(&records(4, 7, 0, b"v"), KafkaCompression::Lz4);
        let info = log.append(first.clone(), CLIENT).await.unwrap();
        assert_eq!((info.base_offset, info.last_offset, info.duplicate), (Offset(0), Offset(3), false));
        // The retry of the same batch is recognised by its sequence, though it was stored in another codec.
        let retry = log.append(first, CLIENT).await.unwrap();
        assert_eq!((retry.base_offset, retry.last_offset, retry.duplicate), (Offset(0), Offset(3), true));
        let next = log.append(encode(&records(4, 7, 4, b"v"), KafkaCompression::Snappy), CLIENT).await.unwrap();
        assert_eq!(next.base_offset, Offset(4));
        let gap = log.append(encode(&records(1, 7, 20, b"v"), KafkaCompression::Gzip), CLIENT).await;
        assert!(matches!(gap, Err(EngineError::Sequence { .. })), "{gap:?}");
        let stored = split_batches(&read_all(&log, 0).await);
        let header = batch::peek_header(&stored[1]).unwrap();
        assert_eq!((header.producer_id.get(), header.base_sequence.get()), (7, 4));
        assert_eq!(header.compression(), Some(Compression::Zstd));
    });
}

#[test]
fn a_compression_bomb_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, zstd_topic()).await;
        // One record of 64 MiB + 1 KiB of zeros: about 65 KiB gzipped, far under max.message.bytes.
        let zeros = vec![0u8; sluice_engine::codec::DECOMPRESSED_BYTES_MAX + 1024];
        let bomb = encode(&records(1, -1, 0, &zeros), KafkaCompression::Gzip);
        drop(zeros);
        assert!(bomb.len() < 200 << 10, "{} bytes", bomb.len());
        let refused = log.append(bomb, CLIENT).await;
        match refused {
            Err(EngineError::Batch { source: BatchError::DecompressedTooLarge { codec: "gzip", .. }, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(log.log_end_offset(), Offset(0));
        // The log still takes honest batches.
        log.append(encode(&records(2, -1, 0, b"ok"), KafkaCompression::Gzip), CLIENT).await.unwrap();
        assert_eq!(log.log_end_offset(), Offset(2));
    });
}

#[test]
fn a_batch_too_large_once_recompressed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig {
            compression: TopicCompression::Codec(Compression::None),
            max_message_bytes: 10_000,
            ..LogConfig::default()
        };
        let log = open(&manager, 0, config).await;
        let batch = encode(&records(50, -1, 0, &[b'z'; 1000]), KafkaCompression::Zstd);
        assert!(batch.len() < 10_000);
        match log.append(batch, AppendMode::Client { leader_epoch: LeaderEpoch(0) }).await {
            Err(EngineError::Batch { source: BatchError::TooLarge { max_bytes: 10_000, .. }, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(log.log_end_offset(), Offset(0));
    });
}
