//! Runs the request-decoding fuzz body on the stored regression corpus (`fuzz/corpus/request_decoding`) and
//! on seeded mutations of valid requests of every supported API, so the corpus is re-checked on every test
//! run. Coverage-guided fuzzing is `cargo fuzz run request_decoding` (see README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use rand::{Rng, SeedableRng};
use sluice_net::fuzz::request_decoding;
use sluice_net::handlers::{decode_frame, Decoded, APIS};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decoding");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10, "regression corpus for request_decoding is missing");
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn encode<R: Encodable + HeaderVersion>(api: ApiKey, version: i16, request: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7);
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version)).unwrap();
    request.encode(&mut body, version).unwrap();
    body.to_vec()
}

/// One default request of every supported API at every supported version (Produce through kafka-protocol
/// from v3, the first version it encodes).
fn valid_requests() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (api, min, max) in APIS.iter().map(|entry| (entry.key, entry.versions.min, entry.versions.max)) {
        for version in min..=max {
            let bytes = match api {
                ApiKey::Produce if version >= 3 => encode(api, version, &ProduceRequest::default()),
                ApiKey::Fetch => encode(api, version, &FetchRequest::default()),
                ApiKey::ListOffsets => encode(api, version, &ListOffsetsRequest::default()),
                ApiKey::Metadata => encode(api, version, &MetadataRequest::default()),
                ApiKey::OffsetForLeaderEpoch => encode(api, version, &OffsetForLeaderEpochRequest::default()),
                ApiKey::ApiVersions => encode(api, version, &ApiVersionsRequest::default()),
                ApiKey::CreateTopics => encode(api, version, &CreateTopicsRequest::default()),
                ApiKey::DeleteTopics => encode(api, version, &DeleteTopicsRequest::default()),
                ApiKey::InitProducerId => encode(api, version, &InitProducerIdRequest::default()),
                ApiKey::DescribeConfigs => encode(api, version, &DescribeConfigsRequest::default()),
                ApiKey::AlterConfigs => encode(api, version, &AlterConfigsRequest::default()),
                ApiKey::CreatePartitions => encode(api, version, &CreatePartitionsRequest::default()),
                ApiKey::DeleteRecords => encode(api, version, &DeleteRecordsRequest::default()),
                ApiKey::IncrementalAlterConfigs => encode(api, version, &IncrementalAlterConfigsRequest::default()),
                ApiKey::DescribeCluster => encode(api, version, &DescribeClusterRequest::default()),
                _ => continue,
            };
            out.push(bytes);
        }
    }
    out
}

#[test]
fn every_supported_api_and_version_decodes() {
    let requests = valid_requests();
    assert!(requests.len() > 60);
    for bytes in requests {
        match decode_frame(bytes::Bytes::from(bytes.clone())) {
            Ok(Decoded::Request(..)) => {}
            other => panic!("valid request {:02x?} did not decode: {other:?}", &bytes[..8]),
        }
    }
}

#[test]
fn corpus_and_mutations_never_panic() {
    for input in corpus() {
        request_decoding(&input);
    }
    let seed: u64 = std::env::var("SLUICE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed {seed} (rerun with SLUICE_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let valid = valid_requests();
    for _ in 0..20_000 {
        let mut data = valid[rng.gen_range(0..valid.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            match rng.gen_range(0..4) {
                0 if !data.is_empty() => {
                    let i = rng.gen_range(0..data.len());
                    data[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => data.truncate(rng.gen_range(0..=data.len())),
                2 if data.len() > 12 => {
                    let i = rng.gen_range(8..data.len() - 4);
                    let value: i32 = if rng.gen() { i32::MAX } else { rng.gen() };
                    data[i..i + 4].copy_from_slice(&value.to_be_bytes());
                }
                _ => data.extend((0..rng.gen_range(1..32)).map(|_| rng.gen::<u8>())),
            }
        }
        request_decoding(&data);
        let mut framed = BytesMut::new();
        framed.put_i32(data.len() as i32);
        framed.put_slice(&data);
        request_decoding(&framed);
    }
}
