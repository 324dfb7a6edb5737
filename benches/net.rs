//! Criterion benches of the broker's protocol hot paths: Produce request decoding (hand-written, zero-copy),
//! Fetch response assembly (header bytes around file slices), and Metadata encoding for 10,000 partitions.
//! Baselines are in perf/RESULTS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use sluice_engine::batch::simple_batch;
use sluice_engine::{FileSlice, Offset};
use sluice_net::handlers::decode_frame;
use sluice_net::handlers::fetch::{assemble, PartitionRead};
use sluice_net::handlers::metadata::{describe_topic, NOT_REQUESTED};
use sluice_net::wire::encode_response;
use sluice_replication::metadata::{PartitionImage, TopicImage};

fn frame_body<R: Encodable + HeaderVersion>(api: ApiKey, version: i16, request: &R) -> Bytes {
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1);
    let mut out = BytesMut::new();
    header.encode(&mut out, R::header_version(version)).unwrap();
    request.encode(&mut out, version).unwrap();
    out.freeze()
}

fn produce_decode(c: &mut Criterion) {
    let batch = Bytes::from(simple_batch(600, 100, 0)); // about 64 KiB
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("bench"))).with_partition_data(
            (0..8).map(|p| PartitionProduceData::default().with_index(p).with_records(Some(batch.clone()))).collect(),
        ),
    ]);
    let mut group = c.benchmark_group("produce_decode");
    for version in [7i16, 9] {
        let body = frame_body(ApiKey::Produce, version, &request);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("v{version}/8-partitions-64KiB"), |b| {
            b.iter(|| decode_frame(body.clone()).unwrap())
        });
    }
    group.finish();
}

fn fetch_assembly(c: &mut Criterion) {
    let file = Arc::new(tempfile::tempfile().unwrap());
    let partitions = 100;
    let request = FetchRequest::default().with_max_bytes(52_428_800).with_topics(vec![FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench")))
        .with_partitions(
            (0..partitions)
                .map(|p| FetchPartition::default().with_partition(p).with_partition_max_bytes(1 << 20))
                .collect(),
        )]);
    let reads: Vec<PartitionRead> = (0..partitions)
        .map(|p| PartitionRead {
            error_code: 0,
            high_watermark: 1000,
            last_stable_offset: 1000,
            log_start_offset: 0,
            slice: Some(FileSlice {
                file: file.clone(),
                position: u64::from(p as u32) * 4096,
                len: 4096,
                first_offset: Offset(0),
            }),
            diverging_epoch: None,
        })
        .collect();
    let mut group = c.benchmark_group("fetch_assembly");
    for version in [11i16, 12] {
        let header = sluice_net::wire::RequestHeader {
            api_key: 1,
            api_version: version,
            correlation_id: 1,
            client_id: None,
            client_host: String::new(),
            principal: None,
        };
        group.bench_function(format!("v{version}/100-partitions"), |b| b.iter(|| assemble(&header, &request, &reads)));
    }
    group.finish();
}

fn metadata_10k(c: &mut Criterion) {
    let topics: Vec<TopicImage> = (0..100)
        .map(|t| TopicImage {
            name: format!("topic-{t:03}"),
            topic_id: t as u128 + 1,
            partitions: vec![PartitionImage::new(vec![0]); 100],
            configs: BTreeMap::new(),
        })
        .collect();
    // Broker 0 registered and unfenced, as on a running single broker.
    let mut image = sluice_replication::metadata::ClusterImage::default();
    image.apply_entry(
        1,
        &[sluice_replication::metadata::MetadataRecord::RegisterBroker {
            node_id: 0,
            incarnation_id: "bench".into(),
            host: "localhost".into(),
            port: 9092,
            rack: None,
        }],
    );
    image
        .apply_entry(2, &[sluice_replication::metadata::MetadataRecord::UnfenceBroker { node_id: 0, broker_epoch: 1 }]);
    let header = sluice_net::wire::RequestHeader {
        api_key: 3,
        api_version: 12,
        correlation_id: 1,
        client_id: None,
        client_host: String::new(),
        principal: None,
    };
    c.bench_function("metadata/10k-partitions-v12", |b| {
        b.iter(|| {
            let response = MetadataResponse::default()
                .with_topics(topics.iter().map(|t| describe_topic(&image, t, NOT_REQUESTED)).collect())
                .with_cluster_authorized_operations(NOT_REQUESTED);
            encode_response(&header, &response)
        })
    });
}

criterion_group!(benches, produce_decode, fetch_assembly, metadata_10k);
criterion_main!(benches);
