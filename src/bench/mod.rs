//! `sluice bench produce`: a load generator modelled on `kafka-producer-perf-test` and `rpk`.
//!
//! Each producer is a thread with one connection per partition leader (one, against a single broker). Record
//! batches are encoded once, before the clock starts, into one Produce request per partition; sending is a
//! memcpy of the correlation id and a write. Requests are pipelined up to `--max-in-flight` per connection, a
//! reader thread per connection times each response, and a reporter prints a progress line every second.
//! Latency is per request (send to response), which is every record's latency in that request.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice_net::client::Client;

use crate::cli::Router;

mod report;
use report::{json_line, rounded, ConsumeJson, E2eJson, Summary, Totals};

#[derive(Debug, Clone, clap::Args)]
pub struct ProduceBenchArgs {
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Stop after this many records (default: run for --duration).
    #[arg(long)]
    pub records: Option<u64>,
    /// Seconds to run when --records is not given.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// 0, 1 or -1/all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Bytes of records per batch (one batch per partition per request).
    #[arg(long, default_value_t = 65536)]
    pub batch_bytes: usize,
    /// Accepted for compatibility with other tools: batches are pre-built, so nothing lingers.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Target records per second over all producers (for latency at a fixed load).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Give records keys `key-<i>`, i being the record's place in its batch: every batch writes the same
    /// keys again, a workload for compacted topics.
    #[arg(long)]
    pub keyed: bool,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

fn acks(value: &str) -> anyhow::Result<i16> {
    Ok(match value {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => bail!("--acks {other}: expected 0, 1 or all"),
    })
}

fn compression(value: &str) -> anyhow::Result<Compression> {
    Ok(match value {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("--compression {other}: expected none, gzip, snappy, lz4 or zstd"),
    })
}

/// One pre-encoded batch of `count` records of `record_size` bytes.
fn encode_batch(count: usize, record_size: usize, codec: Compression, keyed: bool) -> anyhow::Result<Bytes> {
    let value = Bytes::from((0..record_size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let now = sluice_engine::types::now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes; keeping it constant gives
            // one batch. Without a producer id the broker ignores sequences.
            sequence: i as i32,
            timestamp: now,
            key: keyed.then(|| Bytes::from(format!("key-{i}"))),
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    // One batch per request: the encoder is asked for all records at once.
    RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression: codec })
        .map_err(|e| anyhow::anyhow!("encoding a batch: {e}"))?;
    Ok(out.freeze())
}

/// Splits an encoded request into the bytes before and after `batch`, which it carries once. The batch sits
/// near the end (only tagged fields follow it), so the search covers the frame's head only.
fn split_frame(frame: &[u8], batch: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let head = batch.len().min(64);
    let last_start = frame.len().checked_sub(batch.len()).context("encoded request shorter than its batch")?;
    let at = (0..=last_start)
        .find(|&at| frame[at..at + head] == batch[..head] && frame[at..at + batch.len()] == *batch)
        .context("the batch is not in its encoded request")?;
    Ok((frame[..at].to_vec(), frame[at + batch.len()..].to_vec()))
}

/// Creates the topic if it does not exist (with the cluster's default replication factor) and returns its
/// partitions grouped by leader.
fn ensure_topic(router: &mut Router, topic: &str, partitions: i32) -> anyhow::Result<BTreeMap<i32, Vec<i32>>> {
    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)]);
    let (_, response): (_, CreateTopicsResponse) = router.bootstrap().send(ApiKey::CreateTopics, &request)?;
    let code = response.topics.first().map_or(0, |t| t.error_code);
    if code != 0 && code != kafka_protocol::error::ResponseError::TopicAlreadyExists.code() {
        bail!("creating topic {topic}: error {code}");
    }
    // A broker serves a new partition once it has applied the metadata that created it, which may be a moment
    // after the one that answered: wait until every leader answers for its partitions.
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let started = Instant::now();
    loop {
        let count = router.refresh(topic)?;
        let routes = router.by_leader(topic, &(0..count).collect::<Vec<_>>())?;
        let mut served = true;
        for (leader, led) in &routes {
            if latest_offsets(router.broker(*leader)?, &name, led).is_err() {
                served = false;
            }
        }
        if served {
            return Ok(routes);
        }
        router.backoff(topic, started)?;
    }
}

pub fn produce(args: ProduceBenchArgs) -> anyhow::Result<()> {
    let acks = acks(&args.acks)?;
    let codec = compression(&args.compression)?;
    let mut router = Router::connect(&args.bootstrap)?;
    let routes = ensure_topic(&mut router, &args.topic, args.partitions)?;
    let partitions: usize = routes.values().map(Vec::len).sum();
    let per_batch = (args.batch_bytes / args.record_size.max(1)).max(1);
    let batch = encode_batch(per_batch, args.record_size, codec, args.keyed)?;
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let mut histograms: Vec<Arc<Mutex<Histogram<u64>>>> = Vec::new();
    let started = Instant::now();
    let mut threads = Vec::new();
    // A lane is one producer's connection to one partition leader, carrying that leader's partitions and a
    // share of the rate and record count in proportion to them. Against one broker, a lane is a producer.
    let lanes = (0..args.producers).flat_map(|index| routes.iter().map(move |(leader, led)| (index, *leader, led)));
    for (index, leader, led) in lanes {
        let share = led.len() as f64 / partitions.max(1) as f64 / args.producers as f64;
        let histogram = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")?));
        histograms.push(histogram.clone());
        let mut client = Client::connect(router.address(leader)?, Duration::from_secs(5))?;
        let version = client.version_for::<ProduceRequest>(ApiKey::Produce)?;
        // One request per partition, rotated; this producer starts at its own partition. Each request is kept
        // as its own header bytes around the one shared batch, so memory stays one batch however many
        // partitions there are, and sending copies nothing but the correlation id.
        let mut frames: Vec<(Vec<u8>, Vec<u8>)> = (0..led.len())
            .map(|i| {
                let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(led[(i + index) % led.len()])
                            .with_records(Some(batch.clone()))]),
                ]);
                let frame = client.encode_request(ApiKey::Produce, version, &request)?;
                split_frame(&frame, &batch)
            })
            .collect::<anyhow::Result<_>>()?;
        let batch = batch.clone();
        let (mut writer, mut reader) = client.into_pipeline()?;
        let (in_flight_tx, in_flight_rx) = mpsc::sync_channel::<Instant>(args.max_in_flight.max(1));
        let (stop_w, totals_w) = (stop.clone(), totals.clone());
        let records_limit = args.records.map(|r| (r as f64 * share).ceil() as u64);
        let per_producer_rate = args.rate.map(|r| r as f64 * share);
        let record_bytes = (per_batch * args.record_size) as u64;
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut sent = 0u64;
            let mut frame = 0usize;
            let begin = Instant::now();
            while !stop_w.load(Ordering::Relaxed) && records_limit.is_none_or(|limit| sent < limit) {
                // At a fixed rate, latency counts from when the request was due, not from when it went out,
                // so a stalled broker cannot hide its stall by delaying the sends (coordinated omission).
                let mut sent_at = Instant::now();
                if let Some(rate) = per_producer_rate {
                    let due = begin + Duration::from_secs_f64(sent as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(sent_at) {
                        std::thread::sleep(wait);
                    }
                    sent_at = due;
                }
                let count = frames.len();
                let (prefix, suffix) = &mut frames[frame % count];
                let correlation = (frame as i32).wrapping_add(1);
                prefix[8..12].copy_from_slice(&correlation.to_be_bytes());
                frame += 1;
                if acks != 0 {
                    in_flight_tx.send(sent_at).context("reader stopped")?;
                }
                writer.write_frame_parts(&[prefix, &batch, suffix])?;
                sent += per_batch as u64;
                if acks == 0 {
                    totals_w.records.fetch_add(per_batch as u64, Ordering::Relaxed);
                    totals_w.bytes.fetch_add(record_bytes, Ordering::Relaxed);
                }
            }
            Ok(())
        }));
        if acks != 0 {
            let (histogram, totals_r) = (histogram.clone(), totals.clone());
            threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
                while let Ok(sent_at) = in_flight_rx.recv() {
                    let (_, response): (_, ProduceResponse) = reader.read_response(ApiKey::Produce, version)?;
                    let micros = sent_at.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                    if let Ok(mut h) = histogram.lock() {
                        let _ = h.record(micros);
                    }
                    let failed =
                        response.responses.iter().flat_map(|t| &t.partition_responses).any(|p| p.error_code != 0);
                    if failed {
                        totals_r.errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        totals_r.records.fetch_add(per_batch as u64, Ordering::Relaxed);
                        totals_r.bytes.fetch_add(record_bytes, Ordering::Relaxed);
                    }
                }
                Ok(())
            }));
        }
    }
    let snapshot = |histograms: &[Arc<Mutex<Histogram<u64>>>], since: Instant| -> Summary {
        let mut merged = Histogram::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        for h in histograms {
            if let Ok(h) = h.lock() {
                let _ = merged.add(&*h);
            }
        }
        Summary {
            records: totals.records.load(Ordering::Relaxed),
            bytes: totals.bytes.load(Ordering::Relaxed),
            errors: totals.errors.load(Ordering::Relaxed),
            seconds: since.elapsed().as_secs_f64().max(1e-9),
            latency: merged,
        }
    };
    let deadline = args.records.is_none().then(|| started + Duration::from_secs(args.duration));
    loop {
        std::thread::sleep(
            Duration::from_secs(1)
                .min(deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(Instant::now()))),
        );
        let writers_done = threads.iter().all(|t| t.is_finished());
        eprintln!("{}", snapshot(&histograms, started).line(&format!("[{:>4.0}s] ", started.elapsed().as_secs_f64())));
        if deadline.is_some_and(|d| Instant::now() >= d)
            || writers_done
            || args.records.is_some_and(|r| totals.records.load(Ordering::Relaxed) >= r)
        {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        match thread.join() {
            Ok(result) => result?,
            Err(_) => bail!("a producer thread panicked"),
        }
    }
    let summary = snapshot(&histograms, started);
    println!("{}", summary.line("produce: "));
    if let Some(path) = &args.json {
        let json = summary.json()?;
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(json.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if summary.errors > 0 {
        bail!("{} requests failed", summary.errors);
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeBenchArgs {
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Stop after this many records (default: read to the end as it was at the start).
    #[arg(long)]
    pub records: Option<u64>,
    /// Bytes per fetch response.
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// Bytes per partition per fetch.
    #[arg(long, default_value_t = 16_777_216)]
    pub partition_max_bytes: i32,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Records and bytes of the whole batches in a record set, from their headers alone (no decoding), and the
/// next offset to fetch.
fn count_batches(records: &[u8]) -> (u64, u64, Option<i64>) {
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut next = None;
    for batch in sluice_engine::batch::split_batches(records) {
        if let Some(header) = sluice_engine::batch::peek_header(batch) {
            count += u64::try_from(header.records_count.get()).unwrap_or(0);
            bytes += batch.len() as u64;
            next = Some(header.last_offset() + 1);
        }
    }
    (count, bytes, next)
}

/// The latest offset (high watermark) of each partition `0..partitions`, in one ListOffsets request.
/// The log end offsets of some partitions, asked of their leader: partition -> offset.
fn latest_offsets(client: &mut Client, name: &TopicName, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(name.clone()).with_partitions(
            partitions
                .iter()
                .map(|p| {
                    list_offsets_request::ListOffsetsPartition::default().with_partition_index(*p).with_timestamp(-1)
                })
                .collect(),
        ),
    ]);
    let (_, response): (_, ListOffsetsResponse) = client.send(ApiKey::ListOffsets, &request)?;
    let mut offsets = BTreeMap::new();
    for p in response.topics.iter().flat_map(|t| &t.partitions) {
        if p.error_code != 0 {
            bail!("ListOffsets for partition {} failed with error {}", p.partition_index, p.error_code);
        }
        offsets.insert(p.partition_index, p.offset);
    }
    Ok(offsets)
}

/// `sluice bench consume`: reads a topic from the beginning with large fetches, from each partition's leader
/// in turn, and reports the rate.
pub fn consume(args: ConsumeBenchArgs) -> anyhow::Result<()> {
    let mut router = Router::connect(&args.bootstrap)?;
    let name = TopicName(StrBytes::from_string(args.topic.clone()));
    let partitions = router.refresh(&args.topic)?;
    if partitions == 0 {
        bail!("topic {} has no partitions (does it exist?)", args.topic);
    }
    let routes = router.by_leader(&args.topic, &(0..partitions).collect::<Vec<_>>())?;
    let mut end = BTreeMap::new();
    for (leader, led) in &routes {
        end.extend(latest_offsets(router.broker(*leader)?, &name, led)?);
    }
    let goal = args.records.unwrap_or_else(|| end.values().map(|e| *e as u64).sum());
    let mut position: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let (mut records, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let mut last_report = started;
    while records < goal {
        let mut asked = false;
        for (leader, led) in &routes {
            let wanted: Vec<i32> =
                led.iter().copied().filter(|p| args.records.is_some() || position[p] < end[p]).collect();
            if wanted.is_empty() {
                continue;
            }
            asked = true;
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500 / routes.len() as i32)
                .with_min_bytes(1)
                .with_max_bytes(args.fetch_max_bytes)
                .with_session_epoch(-1)
                .with_topics(vec![fetch_request::FetchTopic::default().with_topic(name.clone()).with_partitions(
                    wanted
                        .iter()
                        .map(|p| {
                            fetch_request::FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(position[p])
                                .with_partition_max_bytes(args.partition_max_bytes)
                        })
                        .collect(),
                )]);
            let client = router.broker(*leader)?;
            let version = client.version_for::<FetchRequest>(ApiKey::Fetch)?;
            let response: FetchResponse = client.send_with_version(ApiKey::Fetch, version, &request)?;
            for partition in response.responses.iter().flat_map(|t| &t.partitions) {
                if partition.error_code != 0 {
                    bail!(
                        "fetch from partition {} failed with error {}",
                        partition.partition_index,
                        partition.error_code
                    );
                }
                if let Some(set) = &partition.records {
                    let (n, b, next) = count_batches(set);
                    records += n;
                    bytes += b;
                    if let Some(next) = next {
                        position.insert(partition.partition_index, next);
                    }
                }
            }
        }
        if !asked {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "[{seconds:>4.0}s] {:.0} records/s, {:.1} MB/s",
                records as f64 / seconds,
                bytes as f64 / seconds / 1e6
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "consume: {records} records, {:.0} records/s, {:.1} MB/s of stored batches in {seconds:.2} s",
        records as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    if let Some(path) = &args.json {
        let json = json_line(&ConsumeJson {
            records,
            bytes,
            seconds: rounded(seconds, 3),
            records_per_second: rounded(records as f64 / seconds, 1),
            mb_per_second: rounded(bytes as f64 / seconds / 1e6, 3),
        })?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct E2eBenchArgs {
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
    #[arg(long, default_value = "sluice-bench-e2e")]
    pub topic: String,
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Records per second to produce.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Records per produce request.
    #[arg(long, default_value_t = 1)]
    pub batch_records: usize,
    #[arg(long, default_value = "all")]
    pub acks: String,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// `sluice bench e2e`: latency from the moment a record is handed to the producer until a consumer that
/// long-polls the same partitions has read it. Each record's value starts with its send time.
pub fn e2e(args: E2eBenchArgs) -> anyhow::Result<()> {
    let acks = acks(&args.acks)?;
    let mut router = Router::connect(&args.bootstrap)?;
    let routes = ensure_topic(&mut router, &args.topic, args.partitions)?;
    let partitions: i32 = routes.values().map(|led| led.len() as i32).sum();
    let leader_of: BTreeMap<i32, i32> =
        routes.iter().flat_map(|(leader, led)| led.iter().map(move |p| (*p, *leader))).collect();
    let name = TopicName(StrBytes::from_string(args.topic.clone()));
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?));
    let received = Arc::new(AtomicU64::new(0));

    // Consumers, one per partition leader: start at the end of its partitions, long-poll, time every record.
    let mut readers = Vec::new();
    for (leader, led) in routes {
        let mut consumer = Client::connect(router.address(leader)?, Duration::from_secs(5))?;
        let mut position = latest_offsets(&mut consumer, &name, &led)?;
        let fetch_version = consumer.version_for::<FetchRequest>(ApiKey::Fetch)?;
        let (stop_c, histogram_c, received_c, name_c) =
            (stop.clone(), histogram.clone(), received.clone(), name.clone());
        readers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop_c.load(Ordering::Relaxed) {
                let request = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(100)
                    .with_min_bytes(1)
                    .with_max_bytes(16 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![fetch_request::FetchTopic::default()
                        .with_topic(name_c.clone())
                        .with_partitions(
                            position
                                .iter()
                                .map(|(p, offset)| {
                                    fetch_request::FetchPartition::default()
                                        .with_partition(*p)
                                        .with_fetch_offset(*offset)
                                        .with_partition_max_bytes(4 << 20)
                                })
                                .collect(),
                        )]);
                let response: FetchResponse = consumer.send_with_version(ApiKey::Fetch, fetch_version, &request)?;
                let now_us = origin.elapsed().as_micros() as u64;
                for partition in response.responses.iter().flat_map(|t| &t.partitions) {
                    let Some(set) = &partition.records else { continue };
                    for batch in sluice_engine::batch::split_batches(set) {
                        for record in sluice_engine::batch::records(batch).unwrap_or_default() {
                            let Some(sent_us) = record
                                .value
                                .and_then(|v| v.get(..8))
                                .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
                            else {
                                continue;
                            };
                            if let Ok(mut h) = histogram_c.lock() {
                                let _ = h.record(now_us.saturating_sub(sent_us).max(1));
                            }
                            received_c.fetch_add(1, Ordering::Relaxed);
                            position.insert(partition.partition_index, record.offset + 1);
                        }
                    }
                }
            }
            Ok(())
        }));
    }

    // Producer: one request at a time at the target rate, each value stamped with its send time.
    let padding = vec![b'x'; args.record_size.saturating_sub(8)];
    let interval = Duration::from_secs_f64(args.batch_records as f64 / args.rate.max(1) as f64);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut next = started;
    let mut errors = 0u64;
    let mut partition = 0;
    while started.elapsed() < Duration::from_secs(args.duration) {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        next += interval;
        let mut builder =
            sluice_engine::batch::BatchBuilder::with_capacity(args.batch_records * (args.record_size + 32));
        let now_ms = sluice_engine::types::now_ms();
        for _ in 0..args.batch_records {
            let mut value = (origin.elapsed().as_micros() as u64).to_be_bytes().to_vec();
            value.extend_from_slice(&padding);
            builder.push(&sluice_engine::batch::RecordSpec {
                key: None,
                value: Some(&value),
                headers: &[],
                timestamp_ms: now_ms,
            });
        }
        partition = (partition + 1) % partitions;
        let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default().with_name(name.clone()).with_partition_data(vec![
                PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(builder.finish()))),
            ]),
        ]);
        let producer = router.broker(leader_of[&partition])?;
        let version = producer.version_for::<ProduceRequest>(ApiKey::Produce)?;
        if acks == 0 {
            producer.send_oneway(ApiKey::Produce, version, &request)?;
        } else {
            let response: ProduceResponse = producer.send_with_version(ApiKey::Produce, version, &request)?;
            if response.responses.iter().flat_map(|t| &t.partition_responses).any(|p| p.error_code != 0) {
                errors += 1;
            }
        }
        sent += args.batch_records as u64;
    }
    // Give the consumer a moment to read the tail, then stop it.
    let drain = Instant::now();
    while received.load(Ordering::Relaxed) < sent && drain.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        match reader.join() {
            Ok(result) => result?,
            Err(_) => bail!("a consumer thread panicked"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let histogram = histogram.lock().map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?.clone();
    let summary = Summary {
        records: received.load(Ordering::Relaxed),
        bytes: received.load(Ordering::Relaxed) * args.record_size as u64,
        errors,
        seconds,
        latency: histogram,
    };
    println!("{}", summary.line(&format!("e2e ({sent} sent): ")));
    if let Some(path) = &args.json {
        let json = json_line(&E2eJson { sent, received: summary.records, latency_ms: summary.latency_json(), errors })?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if summary.records < sent {
        bail!("{} of {sent} records were not consumed within 5 s of the end", sent - summary.records);
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdleBenchArgs {
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
    /// Connections to open; each completes an ApiVersions exchange and then stays idle.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to hold them (default: until interrupted).
    #[arg(long)]
    pub duration: Option<u64>,
}

/// `sluice bench idle`: holds many idle client connections open, to measure what they cost the broker
/// (memory, and the throughput of the connections that do work). Prints `holding N connections` once all
/// are open.
pub fn idle(args: IdleBenchArgs) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        held.push(
            crate::cli::connect_any(&args.bootstrap)
                .with_context(|| format!("opening connection {} of {}", n + 1, args.connections))?,
        );
    }
    println!("holding {} connections", held.len());
    std::io::stdout().flush()?;
    match args.duration {
        Some(seconds) => std::thread::sleep(Duration::from_secs(seconds)),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    drop(held);
    Ok(())
}
