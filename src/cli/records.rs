//! `sluice produce` and `sluice consume`: records from stdin to a topic and from a topic to stdout, each
//! partition's requests sent to its leader.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_engine::batch::{BatchBuilder, RecordSpec};
use sluice_net::client::partition_for_key;

use super::requests::{kafka_error, topic_name, Bootstrap};
use super::route::{is_stale_route, list_offset, Router};

#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first occurrence of this into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Send every record to this partition (default: by key, or round-robin without one).
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or -1/all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Records per request.
    #[arg(long, default_value_t = 500)]
    pub batch_records: usize,
    #[command(flatten)]
    pub bootstrap: Bootstrap,
}

/// Records waiting to be sent, by partition: (key, value).
type Pending = BTreeMap<i32, Vec<(Option<Vec<u8>>, Vec<u8>)>>;

fn acks(value: &str) -> anyhow::Result<i16> {
    Ok(match value {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => bail!("--acks {other}: expected 0, 1 or all"),
    })
}

pub fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let acks = acks(&args.acks)?;
    let mut router = Router::connect(&args.bootstrap.bootstrap)?;
    let partitions = router.refresh(&args.topic)?;
    let stdin = std::io::stdin();
    let mut pending: Pending = BTreeMap::new();
    let mut pending_count = 0usize;
    let mut round_robin = 0i32;
    let mut sent = 0u64;
    for line in stdin.lock().lines() {
        let line = line.context("reading stdin")?;
        let (key, value) = match &args.key_separator {
            Some(separator) => match line.split_once(separator.as_str()) {
                Some((key, value)) => (Some(key.as_bytes().to_vec()), value.as_bytes().to_vec()),
                None => (None, line.as_bytes().to_vec()),
            },
            None => (None, line.as_bytes().to_vec()),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => {
                round_robin = (round_robin + 1) % partitions.max(1);
                round_robin
            }
        };
        pending.entry(partition).or_default().push((key, value));
        pending_count += 1;
        if pending_count >= args.batch_records {
            sent += send(&mut router, &args.topic, acks, &mut pending)?;
            pending_count = 0;
        }
    }
    if pending_count > 0 {
        sent += send(&mut router, &args.topic, acks, &mut pending)?;
    }
    eprintln!("produced {sent} record(s) to {}", args.topic);
    Ok(())
}

/// Sends the pending records, one request per partition leader. Partitions whose leader moved are sent again
/// to the new one: a leader that answers NOT_LEADER_OR_FOLLOWER has not appended them.
fn send(router: &mut Router, topic: &str, acks: i16, pending: &mut Pending) -> anyhow::Result<u64> {
    let now = sluice_engine::types::now_ms();
    let mut batches: BTreeMap<i32, (u64, Bytes)> = std::mem::take(pending)
        .into_iter()
        .map(|(partition, records)| {
            let mut builder = BatchBuilder::new();
            for (key, value) in &records {
                builder.push(&RecordSpec { key: key.as_deref(), value: Some(value), headers: &[], timestamp_ms: now });
            }
            (partition, (records.len() as u64, Bytes::from(builder.finish())))
        })
        .collect();
    let mut count = 0u64;
    let started = Instant::now();
    while !batches.is_empty() {
        let partitions: Vec<i32> = batches.keys().copied().collect();
        for (leader, led) in router.by_leader(topic, &partitions)? {
            let data = led
                .iter()
                .map(|p| PartitionProduceData::default().with_index(*p).with_records(Some(batches[p].1.clone())))
                .collect();
            let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
                TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(data),
            ]);
            let client = router.broker(leader)?;
            let version = client.version_for::<ProduceRequest>(ApiKey::Produce)?;
            if acks == 0 {
                client.send_oneway(ApiKey::Produce, version, &request)?;
                for p in &led {
                    count += batches.remove(p).map_or(0, |(n, _)| n);
                }
                continue;
            }
            let response: ProduceResponse = match client.send_with_version(ApiKey::Produce, version, &request) {
                Ok(response) => response,
                Err(error) => {
                    // The answer is lost with the connection: the records may or may not be stored. Resending
                    // could duplicate them, so the command stops and says so.
                    router.forget(leader);
                    return Err(anyhow::Error::from(error).context(format!(
                        "producing to broker {leader}: the last {} record(s) may or may not be stored",
                        batches.values().map(|(n, _)| n).sum::<u64>()
                    )));
                }
            };
            for partition in response.responses.iter().flat_map(|t| &t.partition_responses) {
                if partition.error_code == 0 {
                    count += batches.remove(&partition.index).map_or(0, |(n, _)| n);
                } else if !is_stale_route(partition.error_code) {
                    return Err(kafka_error(partition.error_code, partition.error_message.as_ref())
                        .context(format!("producing to {topic}-{}", partition.index)));
                }
            }
        }
        if !batches.is_empty() {
            router.backoff(topic, started)?;
        }
    }
    Ok(count)
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset (the default is the end).
    #[arg(long, conflicts_with_all = ["offset", "from_end"])]
    pub from_beginning: bool,
    /// Start at this offset (in every partition read).
    #[arg(long)]
    pub offset: Option<i64>,
    /// Start at the end: only new records (the default).
    #[arg(long)]
    pub from_end: bool,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Output format: %k key, %v value, %p partition, %o offset, %t timestamp, %T topic, \n, \t.
    #[arg(long, default_value = "%v\\n")]
    pub format: String,
    /// Stop after this many records.
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Stop once every partition is read to its end.
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    #[arg(long, default_value_t = 1_048_576)]
    pub fetch_max_bytes: i32,
    #[command(flatten)]
    pub bootstrap: Bootstrap,
}

fn render(
    format: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.len() + value.map_or(0, <[u8]>::len));
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(code)) => {
                chars.next();
                match code {
                    'k' => out.extend_from_slice(key.unwrap_or_default()),
                    'v' => out.extend_from_slice(value.unwrap_or_default()),
                    'p' => out.extend_from_slice(partition.to_string().as_bytes()),
                    'o' => out.extend_from_slice(offset.to_string().as_bytes()),
                    't' => out.extend_from_slice(timestamp.to_string().as_bytes()),
                    'T' => out.extend_from_slice(topic.as_bytes()),
                    '%' => out.push(b'%'),
                    other => out.extend_from_slice(format!("%{other}").as_bytes()),
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push(b'\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push(b'\t');
            }
            (c, _) => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out
}

pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut router = Router::connect(&args.bootstrap.bootstrap)?;
    let count = router.refresh(&args.topic)?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if p >= 0 && p < count => vec![p],
        Some(p) => bail!("topic '{}' has no partition {p} ({count} partitions)", args.topic),
        None => (0..count).collect(),
    };
    let mut positions = BTreeMap::new();
    for &p in &partitions {
        let start = match (args.offset, args.from_beginning) {
            (Some(offset), _) => offset,
            (None, true) => list_offset(&mut router, &args.topic, p, -2)?,
            (None, false) => list_offset(&mut router, &args.topic, p, -1)?,
        };
        positions.insert(p, start);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    let mut last_progress = Instant::now();
    let mut rerouting: Option<Instant> = None;
    loop {
        let routes = router.by_leader(&args.topic, &partitions)?;
        // Long polls one leader after another: each waits a share of the poll time.
        let wait = if args.exit_at_end { 100 } else { (500 / routes.len().max(1) as i32).max(50) };
        let mut at_end = true;
        let mut stale = false;
        for (leader, led) in routes {
            let topics = vec![FetchTopic::default().with_topic(topic_name(&args.topic)).with_partitions(
                led.iter()
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(positions[p])
                            .with_partition_max_bytes(args.fetch_max_bytes)
                    })
                    .collect(),
            )];
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(wait)
                .with_min_bytes(1)
                .with_max_bytes(args.fetch_max_bytes.saturating_mul(4))
                .with_session_epoch(-1)
                .with_topics(topics);
            let client = router.broker(leader)?;
            let version = client.version_for::<FetchRequest>(ApiKey::Fetch)?;
            let response: FetchResponse = match client.send_with_version(ApiKey::Fetch, version, &request) {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(%error, leader, "fetch failed; refreshing the route");
                    router.forget(leader);
                    stale = true;
                    continue;
                }
            };
            for partition in response.responses.iter().flat_map(|t| &t.partitions) {
                if is_stale_route(partition.error_code) {
                    stale = true;
                    at_end = false;
                    continue;
                }
                if partition.error_code != 0 {
                    return Err(kafka_error(partition.error_code, None)
                        .context(format!("fetching {}-{}", args.topic, partition.partition_index)));
                }
                let position = positions.get(&partition.partition_index).copied().unwrap_or(0);
                if let Some(records) = &partition.records {
                    let mut records = records.clone();
                    while !records.is_empty() {
                        let Ok(set) = RecordBatchDecoder::decode(&mut records) else { break };
                        for record in set.records {
                            if record.control || record.offset < position {
                                continue;
                            }
                            let line = render(
                                &args.format,
                                &args.topic,
                                partition.partition_index,
                                record.offset,
                                record.timestamp,
                                record.key.as_deref(),
                                record.value.as_deref(),
                            );
                            out.write_all(&line).context("writing to stdout")?;
                            positions.insert(partition.partition_index, record.offset + 1);
                            printed += 1;
                            last_progress = Instant::now();
                            if args.max_records.is_some_and(|max| printed >= max) {
                                out.flush().ok();
                                return Ok(());
                            }
                        }
                    }
                }
                let position = positions.get(&partition.partition_index).copied().unwrap_or(0);
                if position < partition.high_watermark {
                    at_end = false;
                }
            }
        }
        out.flush().ok();
        if stale {
            let since = *rerouting.get_or_insert_with(Instant::now);
            router.backoff(&args.topic, since)?;
            continue;
        }
        rerouting = None;
        if args.exit_at_end && at_end && last_progress.elapsed() > Duration::from_millis(50) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_expand() {
        let line = render("%T/%p@%o %k=%v\\n", "t", 2, 7, 0, Some(b"k"), Some(b"v"));
        assert_eq!(line, b"t/2@7 k=v\n");
    }
}
