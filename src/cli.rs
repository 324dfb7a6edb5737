//! `sluice topic`, `sluice produce`, `sluice consume` and `sluice group`: command-line tools on the client in
//! `sluice_net::client`. They work against any Kafka-compatible broker.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_engine::batch::{BatchBuilder, RecordSpec};
use sluice_net::client::{partition_for_key, Client};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct Bootstrap {
    /// Broker to connect to.
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// Topic config, KEY=VALUE (Kafka names); repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// List topics.
    List {
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Show a topic's partitions, offsets and config overrides.
    Describe {
        name: String,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Delete a topic.
    Delete {
        name: String,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Set or delete topic configs.
    AlterConfig {
        name: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn kafka_error(code: i16, message: Option<&StrBytes>) -> anyhow::Error {
    let name = kafka_protocol::error::ResponseError::try_from_code(code)
        .map_or(format!("error {code}"), |e| format!("{e:?} ({code})"));
    match message {
        Some(message) if !message.is_empty() => anyhow::anyhow!("{name}: {message}"),
        _ => anyhow::anyhow!("{name}"),
    }
}

fn key_value(pair: &str) -> anyhow::Result<(String, String)> {
    let (key, value) = pair.split_once('=').with_context(|| format!("'{pair}': expected KEY=VALUE"))?;
    Ok((key.trim().to_string(), value.trim().to_string()))
}

fn connect(bootstrap: &Bootstrap) -> anyhow::Result<Client> {
    Ok(Client::connect(&bootstrap.bootstrap, CONNECT_TIMEOUT)?)
}

fn metadata(client: &mut Client, topics: Option<Vec<String>>) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect()
        }))
        .with_allow_auto_topic_creation(false);
    Ok(client.send(ApiKey::Metadata, &request)?.1)
}

/// Partition count of a topic, or a clear error.
fn partition_count(client: &mut Client, topic: &str) -> anyhow::Result<i32> {
    let response = metadata(client, Some(vec![topic.to_string()]))?;
    let found = response.topics.first().context("broker returned no topic")?;
    if found.error_code != 0 {
        return Err(kafka_error(found.error_code, None).context(format!("topic '{topic}'")));
    }
    Ok(found.partitions.len() as i32)
}

fn list_offset(client: &mut Client, topic: &str, partition: i32, timestamp: i64) -> anyhow::Result<i64> {
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let (_, response): (_, ListOffsetsResponse) = client.send(ApiKey::ListOffsets, &request)?;
    let result = response.topics.first().and_then(|t| t.partitions.first()).context("empty ListOffsets response")?;
    if result.error_code != 0 {
        return Err(kafka_error(result.error_code, None));
    }
    Ok(result.offset)
}

pub fn topic(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create { name, partitions, replication_factor, configs, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let configs = configs
                .iter()
                .map(|pair| {
                    key_value(pair)
                        .map(|(k, v)| CreatableTopicConfig::default().with_name(text(&k)).with_value(Some(text(&v))))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let request =
                CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
                    .with_name(topic_name(&name))
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication_factor)
                    .with_configs(configs)]);
            let (_, response): (_, CreateTopicsResponse) = client.send(ApiKey::CreateTopics, &request)?;
            let result = response.topics.first().context("empty CreateTopics response")?;
            if result.error_code != 0 {
                return Err(kafka_error(result.error_code, result.error_message.as_ref())
                    .context(format!("creating topic '{name}'")));
            }
            println!("created topic {name} with {} partition(s)", result.num_partitions);
        }
        TopicCommand::List { bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let response = metadata(&mut client, None)?;
            let mut names: Vec<(String, usize)> = response
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| (n.to_string(), t.partitions.len())))
                .collect();
            names.sort();
            for (name, partitions) in names {
                println!("{name}\t{partitions}");
            }
        }
        TopicCommand::Describe { name, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let response = metadata(&mut client, Some(vec![name.clone()]))?;
            let topic = response.topics.first().context("broker returned no topic")?;
            if topic.error_code != 0 {
                return Err(kafka_error(topic.error_code, None).context(format!("topic '{name}'")));
            }
            println!("topic {name}  id {}  partitions {}", topic.topic_id, topic.partitions.len());
            println!("partition\tleader\tepoch\treplicas\tisr\tstart\tend");
            let mut partitions = topic.partitions.clone();
            partitions.sort_by_key(|p| p.partition_index);
            for p in partitions {
                let start = list_offset(&mut client, &name, p.partition_index, -2).unwrap_or(-1);
                let end = list_offset(&mut client, &name, p.partition_index, -1).unwrap_or(-1);
                let ids = |v: &[BrokerId]| v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{start}\t{end}",
                    p.partition_index,
                    p.leader_id.0,
                    p.leader_epoch,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes)
                );
            }
            let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text(&name))
                .with_configuration_keys(None)]);
            let (_, configs): (_, DescribeConfigsResponse) = client.send(ApiKey::DescribeConfigs, &request)?;
            for result in configs.results {
                for entry in result.configs {
                    let value = entry.value.as_ref().map_or(String::new(), ToString::to_string);
                    let source = match entry.config_source {
                        1 => "topic override",
                        2 | 3 => "dynamic broker",
                        4 => "static broker",
                        _ => "default",
                    };
                    println!("config {}={value}\t({source})", entry.name);
                }
            }
        }
        TopicCommand::Delete { name, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let version = client.version_for::<DeleteTopicsRequest>(ApiKey::DeleteTopics)?;
            let request = if version >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name(&name)))
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![topic_name(&name)])
            }
            .with_timeout_ms(30_000);
            let response: DeleteTopicsResponse = client.send_with_version(ApiKey::DeleteTopics, version, &request)?;
            let result = response.responses.first().context("empty DeleteTopics response")?;
            if result.error_code != 0 {
                return Err(kafka_error(result.error_code, result.error_message.as_ref())
                    .context(format!("deleting topic '{name}'")));
            }
            println!("deleted topic {name}");
        }
        TopicCommand::AlterConfig { name, set, delete, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let mut configs = Vec::new();
            for pair in &set {
                let (key, value) = key_value(pair)?;
                configs.push(
                    AlterableConfig::default()
                        .with_name(text(&key))
                        .with_config_operation(0)
                        .with_value(Some(text(&value))),
                );
            }
            for key in &delete {
                configs.push(AlterableConfig::default().with_name(text(key)).with_config_operation(1));
            }
            if configs.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            let request =
                IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text(&name))
                    .with_configs(configs)]);
            let (_, response): (_, IncrementalAlterConfigsResponse) =
                client.send(ApiKey::IncrementalAlterConfigs, &request)?;
            let result = response.responses.first().context("empty IncrementalAlterConfigs response")?;
            if result.error_code != 0 {
                return Err(kafka_error(result.error_code, result.error_message.as_ref())
                    .context(format!("altering topic '{name}'")));
            }
            println!("updated configs of topic {name}");
        }
    }
    Ok(())
}

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

pub fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => bail!("--acks {other}: expected 0, 1 or all"),
    };
    let mut client = connect(&args.bootstrap)?;
    let partitions = partition_count(&mut client, &args.topic)?;
    let version = client.version_for::<ProduceRequest>(ApiKey::Produce)?;
    let stdin = std::io::stdin();
    let mut pending: Pending = BTreeMap::new();
    let mut pending_count = 0usize;
    let mut round_robin = 0i32;
    let mut sent = 0u64;
    let flush = |client: &mut Client, pending: &mut Pending| -> anyhow::Result<u64> {
        let now = sluice_engine::types::now_ms();
        let mut data = Vec::new();
        let mut count = 0u64;
        for (partition, records) in std::mem::take(pending) {
            let mut builder = BatchBuilder::new();
            for (key, value) in &records {
                builder.push(&RecordSpec { key: key.as_deref(), value: Some(value), headers: &[], timestamp_ms: now });
            }
            count += records.len() as u64;
            data.push(
                PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(builder.finish()))),
            );
        }
        let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default().with_name(topic_name(&args.topic)).with_partition_data(data),
        ]);
        if acks == 0 {
            client.send_oneway(ApiKey::Produce, version, &request)?;
            return Ok(count);
        }
        let response: ProduceResponse = client.send_with_version(ApiKey::Produce, version, &request)?;
        for topic in &response.responses {
            for partition in &topic.partition_responses {
                if partition.error_code != 0 {
                    return Err(kafka_error(partition.error_code, partition.error_message.as_ref())
                        .context(format!("producing to {}-{}", args.topic, partition.index)));
                }
            }
        }
        Ok(count)
    };
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
            sent += flush(&mut client, &mut pending)?;
            pending_count = 0;
        }
    }
    if pending_count > 0 {
        sent += flush(&mut client, &mut pending)?;
    }
    eprintln!("produced {sent} record(s) to {}", args.topic);
    Ok(())
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
    let mut client = connect(&args.bootstrap)?;
    let count = partition_count(&mut client, &args.topic)?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if p >= 0 && p < count => vec![p],
        Some(p) => bail!("topic '{}' has no partition {p} ({count} partitions)", args.topic),
        None => (0..count).collect(),
    };
    let mut positions = BTreeMap::new();
    for &p in &partitions {
        let start = match (args.offset, args.from_beginning) {
            (Some(offset), _) => offset,
            (None, true) => list_offset(&mut client, &args.topic, p, -2)?,
            (None, false) => list_offset(&mut client, &args.topic, p, -1)?,
        };
        positions.insert(p, start);
    }
    let version = client.version_for::<FetchRequest>(ApiKey::Fetch)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0u64;
    let mut last_progress = Instant::now();
    loop {
        let topics = vec![FetchTopic::default().with_topic(topic_name(&args.topic)).with_partitions(
            positions
                .iter()
                .map(|(p, offset)| {
                    FetchPartition::default()
                        .with_partition(*p)
                        .with_fetch_offset(*offset)
                        .with_partition_max_bytes(args.fetch_max_bytes)
                })
                .collect(),
        )];
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(if args.exit_at_end { 100 } else { 500 })
            .with_min_bytes(1)
            .with_max_bytes(args.fetch_max_bytes.saturating_mul(4))
            .with_session_epoch(-1)
            .with_topics(topics);
        let response: FetchResponse = client.send_with_version(ApiKey::Fetch, version, &request)?;
        let mut at_end = true;
        for topic in &response.responses {
            for partition in &topic.partitions {
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
        if args.exit_at_end && at_end && last_progress.elapsed() > Duration::from_millis(50) {
            return Ok(());
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their state.
    List {
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Show a group's members, assignments, committed offsets and lag.
    Describe {
        group: String,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Delete an empty group and its committed offsets.
    Delete {
        group: String,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Move an inactive group's committed offsets for a topic. Prints the plan; applies it with --execute.
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long, group = "target")]
        to_earliest: bool,
        #[arg(long, group = "target")]
        to_latest: bool,
        #[arg(long, group = "target")]
        to_offset: Option<i64>,
        #[arg(long, group = "target", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
}

fn describe_group(client: &mut Client, group: &str) -> anyhow::Result<describe_groups_response::DescribedGroup> {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
    let (_, response): (_, DescribeGroupsResponse) = client.send(ApiKey::DescribeGroups, &request)?;
    let described = response.groups.into_iter().next().context("empty DescribeGroups response")?;
    if described.error_code != 0 {
        return Err(
            kafka_error(described.error_code, described.error_message.as_ref()).context(format!("group '{group}'"))
        );
    }
    Ok(described)
}

/// Committed offsets of a group: (topic, partition) -> offset (-1 when none).
fn group_offsets(client: &mut Client, group: &str) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let version = client.version_for::<OffsetFetchRequest>(ApiKey::OffsetFetch)?;
    let mut out = BTreeMap::new();
    if version >= 8 {
        let request =
            OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(None)]);
        let response: OffsetFetchResponse = client.send_with_version(ApiKey::OffsetFetch, version, &request)?;
        for g in response.groups {
            if g.error_code != 0 {
                return Err(kafka_error(g.error_code, None));
            }
            for t in g.topics {
                for p in t.partitions {
                    out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
                }
            }
        }
    } else {
        let request = OffsetFetchRequest::default().with_group_id(GroupId(text(group))).with_topics(None);
        let response: OffsetFetchResponse = client.send_with_version(ApiKey::OffsetFetch, version, &request)?;
        for t in response.topics {
            for p in t.partitions {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Partitions named by a consumer-protocol assignment (version, [topic, [partition]], user data).
fn assignment_partitions(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut reader = sluice_net::wire::Reader::new(Bytes::copy_from_slice(bytes));
    let mut out = Vec::new();
    let parse = |reader: &mut sluice_net::wire::Reader, out: &mut Vec<(String, i32)>| -> Option<()> {
        reader.i16("version").ok()?;
        for _ in 0..reader.array_len("topics", false).ok()? {
            let topic = reader.string("topic").ok()?;
            for _ in 0..reader.array_len("partitions", false).ok()? {
                out.push((topic.clone(), reader.i32("partition").ok()?));
            }
        }
        Some(())
    };
    let _ = parse(&mut reader, &mut out);
    out
}

pub fn group(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let (_, response): (_, ListGroupsResponse) =
                client.send(ApiKey::ListGroups, &ListGroupsRequest::default())?;
            if response.error_code != 0 {
                return Err(kafka_error(response.error_code, None));
            }
            for g in response.groups {
                println!("{}\t{}\t{}", g.group_id.as_str(), g.group_state.as_str(), g.protocol_type.as_str());
            }
        }
        GroupCommand::Describe { group, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let described = describe_group(&mut client, &group)?;
            println!(
                "group {group}  state {}  protocol {} {}",
                described.group_state.as_str(),
                described.protocol_type.as_str(),
                described.protocol_data.as_str()
            );
            let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
            for member in &described.members {
                let partitions = assignment_partitions(&member.member_assignment);
                println!(
                    "member {}  client {}  host {}  instance {}  partitions {}",
                    member.member_id.as_str(),
                    member.client_id.as_str(),
                    member.client_host.as_str(),
                    member.group_instance_id.as_ref().map_or("-", |s| s.as_str()),
                    partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>().join(",")
                );
                for tp in partitions {
                    owner.insert(tp, member.member_id.to_string());
                }
            }
            println!("topic\tpartition\tcommitted\tend\tlag\tmember");
            let offsets = group_offsets(&mut client, &group)?;
            for ((topic, partition), committed) in &offsets {
                let end = list_offset(&mut client, topic, *partition, -1).unwrap_or(-1);
                let lag = if *committed >= 0 && end >= 0 { (end - committed).to_string() } else { "-".into() };
                let member = owner.get(&(topic.clone(), *partition)).map_or("-", String::as_str);
                println!("{topic}\t{partition}\t{committed}\t{end}\t{lag}\t{member}");
            }
        }
        GroupCommand::Delete { group, bootstrap } => {
            let mut client = connect(&bootstrap)?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(&group))]);
            let (_, response): (_, DeleteGroupsResponse) = client.send(ApiKey::DeleteGroups, &request)?;
            let result = response.results.first().context("empty DeleteGroups response")?;
            if result.error_code != 0 {
                return Err(kafka_error(result.error_code, None).context(format!("deleting group '{group}'")));
            }
            println!("deleted group {group}");
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            execute,
            bootstrap,
        } => {
            let mut client = connect(&bootstrap)?;
            if !(to_earliest || to_latest || to_offset.is_some() || shift_by.is_some()) {
                bail!("say where to: --to-earliest, --to-latest, --to-offset N or --shift-by N");
            }
            let described = describe_group(&mut client, &group)?;
            let state = described.group_state.to_string();
            if state != "Empty" && state != "Dead" {
                bail!(
                    "group '{group}' is {state}: stop its consumers first (offsets of an active group cannot be reset)"
                );
            }
            let partitions = partition_count(&mut client, &topic)?;
            let committed = group_offsets(&mut client, &group)?;
            let mut plan = Vec::new();
            for p in 0..partitions {
                let earliest = list_offset(&mut client, &topic, p, -2)?;
                let latest = list_offset(&mut client, &topic, p, -1)?;
                let current = committed.get(&(topic.clone(), p)).copied().filter(|o| *o >= 0);
                let target = if to_earliest {
                    earliest
                } else if to_latest {
                    latest
                } else if let Some(offset) = to_offset {
                    offset
                } else {
                    current.unwrap_or(earliest) + shift_by.unwrap_or(0)
                };
                plan.push((p, current, target.clamp(earliest, latest)));
            }
            println!("topic\tpartition\tcurrent\tnew");
            for (p, current, target) in &plan {
                println!("{topic}\t{p}\t{}\t{target}", current.map_or("-".to_string(), |c| c.to_string()));
            }
            if !execute {
                println!("(dry run: add --execute to apply)");
                return Ok(());
            }
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(text(&group)))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        plan.iter()
                            .map(|(p, _, target)| {
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(*target)
                            })
                            .collect(),
                    )]);
            let (_, response): (_, OffsetCommitResponse) = client.send(ApiKey::OffsetCommit, &request)?;
            for t in response.topics {
                for p in t.partitions {
                    if p.error_code != 0 {
                        return Err(
                            kafka_error(p.error_code, None).context(format!("resetting {topic}-{}", p.partition_index))
                        );
                    }
                }
            }
            println!("reset offsets of group {group} on {topic}");
        }
    }
    Ok(())
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
