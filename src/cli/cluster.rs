//! `sluice cluster describe` and `sluice topic reassign`: the cluster as an operator sees it, through Kafka's
//! own APIs (Metadata, DescribeCluster, DescribeQuorum, AlterPartitionReassignments,
//! ListPartitionReassignments), so they work against any broker of the cluster.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::*;
use serde::Serialize;

use super::requests::{connect, kafka_error, metadata, topic_name, Bootstrap};

/// DescribeCluster's tagged field with the broker epoch (`net/src/handlers/describe_cluster.rs`).
const BROKER_EPOCH_TAG: i32 = 10_000;

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// The controller quorum (leader, voters, their log ends and lag) and the brokers (epoch, fenced, rack).
    Describe {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
}

#[derive(Debug, Serialize)]
struct Replica {
    node_id: i32,
    log_end_offset: i64,
    lag: i64,
    last_fetch_timestamp: i64,
    last_caught_up_timestamp: i64,
}

#[derive(Debug, Serialize)]
struct Quorum {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<Replica>,
    observers: Vec<Replica>,
}

#[derive(Debug, Serialize)]
struct Broker {
    node_id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    epoch: i64,
    fenced: bool,
}

#[derive(Debug, Serialize)]
struct Described {
    cluster_id: String,
    controller_id: i32,
    quorum: Quorum,
    brokers: Vec<Broker>,
}

fn replicas(states: &[describe_quorum_response::ReplicaState], high_watermark: i64) -> Vec<Replica> {
    states
        .iter()
        .map(|s| Replica {
            node_id: s.replica_id.0,
            log_end_offset: s.log_end_offset,
            lag: (high_watermark - s.log_end_offset).max(0),
            last_fetch_timestamp: s.last_fetch_timestamp,
            last_caught_up_timestamp: s.last_caught_up_timestamp,
        })
        .collect()
}

fn describe(bootstrap: &Bootstrap) -> anyhow::Result<Described> {
    let mut client = connect(bootstrap)?;
    let md = metadata(&mut client, Some(Vec::new()))?;
    let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let (_, cluster): (_, DescribeClusterResponse) = client.send(ApiKey::DescribeCluster, &request)?;
    if cluster.error_code != 0 {
        return Err(kafka_error(cluster.error_code, cluster.error_message.as_ref()));
    }
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name("__cluster_metadata"))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let (_, quorum): (_, DescribeQuorumResponse) = client.send(ApiKey::DescribeQuorum, &request)?;
    let partition = quorum.topics.first().and_then(|t| t.partitions.first()).context("empty DescribeQuorum answer")?;
    if partition.error_code != 0 {
        return Err(
            kafka_error(partition.error_code, partition.error_message.as_ref()).context("describing the quorum")
        );
    }
    let high_watermark = partition.high_watermark;
    let brokers = cluster
        .brokers
        .iter()
        .map(|b| Broker {
            node_id: b.broker_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
            epoch: b
                .unknown_tagged_fields
                .get(&BROKER_EPOCH_TAG)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
                .map_or(-1, i64::from_be_bytes),
            fenced: b.is_fenced,
        })
        .collect();
    Ok(Described {
        cluster_id: md.cluster_id.map(|c| c.to_string()).unwrap_or_default(),
        controller_id: md.controller_id.0,
        quorum: Quorum {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark,
            voters: replicas(&partition.current_voters, high_watermark),
            observers: replicas(&partition.observers, high_watermark),
        },
        brokers,
    })
}

pub fn cluster(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Describe { json, bootstrap } => {
            let described = describe(&bootstrap)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&described)?);
                return Ok(());
            }
            let now = sluice_engine::types::now_ms();
            let ago = |at: i64| if at < 0 { "-".to_string() } else { format!("{} ms ago", (now - at).max(0)) };
            println!("cluster id  {}", described.cluster_id);
            let q = &described.quorum;
            println!(
                "quorum      leader {}, epoch {}, high watermark {}",
                q.leader_id, q.leader_epoch, q.high_watermark
            );
            println!(
                "{:<10} {:>6} {:>14} {:>8} {:>16} {:>16}",
                "", "node", "log end", "lag", "last fetch", "caught up"
            );
            for (kind, list) in [("voter", &q.voters), ("observer", &q.observers)] {
                for r in list.iter() {
                    println!(
                        "{:<10} {:>6} {:>14} {:>8} {:>16} {:>16}",
                        kind,
                        r.node_id,
                        r.log_end_offset,
                        r.lag,
                        ago(r.last_fetch_timestamp),
                        ago(r.last_caught_up_timestamp)
                    );
                }
            }
            println!("brokers");
            for b in &described.brokers {
                println!(
                    "  {:>4}  {}:{}  rack {}  epoch {}  {}",
                    b.node_id,
                    b.host,
                    b.port,
                    b.rack.as_deref().unwrap_or("-"),
                    b.epoch,
                    if b.fenced { "fenced" } else { "running" }
                );
            }
            Ok(())
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReassignArgs {
    pub topic: String,
    #[arg(long)]
    pub partition: i32,
    /// The target replicas, comma-separated broker ids, the preferred leader first; omit with --cancel.
    #[arg(long, value_delimiter = ',')]
    pub replicas: Vec<i32>,
    /// Cancel the reassignment in progress.
    #[arg(long)]
    pub cancel: bool,
    /// Wait until it completes, printing progress, for at most this many seconds (0: do not wait).
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    #[command(flatten)]
    pub bootstrap: Bootstrap,
}

/// A reassignment in progress: (replicas, adding, removing).
type Ongoing = (Vec<i32>, Vec<i32>, Vec<i32>);

/// The reassignment of one partition still in progress.
fn ongoing(bootstrap: &Bootstrap, topic: &str, partition: i32) -> anyhow::Result<Option<Ongoing>> {
    let mut client = connect(bootstrap)?;
    let request = ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
        ListPartitionReassignmentsTopics::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![partition]),
    ]));
    let (_, response): (_, ListPartitionReassignmentsResponse) =
        client.send(ApiKey::ListPartitionReassignments, &request)?;
    if response.error_code != 0 {
        return Err(kafka_error(response.error_code, response.error_message.as_ref()));
    }
    let ids = |list: &[BrokerId]| list.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map(|p| (ids(&p.replicas), ids(&p.adding_replicas), ids(&p.removing_replicas))))
}

pub fn reassign(args: ReassignArgs) -> anyhow::Result<()> {
    if args.cancel != args.replicas.is_empty() {
        bail!("give either --replicas or --cancel");
    }
    let mut client = connect(&args.bootstrap)?;
    let replicas = (!args.cancel).then(|| args.replicas.iter().copied().map(BrokerId).collect());
    let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![ReassignableTopic::default()
        .with_name(topic_name(&args.topic))
        .with_partitions(vec![ReassignablePartition::default()
            .with_partition_index(args.partition)
            .with_replicas(replicas)])]);
    let (_, response): (_, AlterPartitionReassignmentsResponse) =
        client.send(ApiKey::AlterPartitionReassignments, &request)?;
    if response.error_code != 0 {
        return Err(kafka_error(response.error_code, response.error_message.as_ref()));
    }
    for result in response.responses.iter().flat_map(|t| t.partitions.iter()) {
        if result.error_code != 0 {
            return Err(kafka_error(result.error_code, result.error_message.as_ref()));
        }
    }
    let name = format!("{}-{}", args.topic, args.partition);
    if args.cancel {
        println!("{name}: reassignment cancelled");
        return Ok(());
    }
    println!("{name}: reassignment to {:?} started", args.replicas);
    if args.wait == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        match ongoing(&args.bootstrap, &args.topic, args.partition)? {
            None => {
                println!("{name}: reassignment complete");
                return Ok(());
            }
            Some((replicas, adding, removing)) => {
                println!("{name}: replicas {replicas:?}, adding {adding:?} (catching up), removing {removing:?}");
            }
        }
        if Instant::now() >= deadline {
            bail!("{name}: the reassignment did not complete within {} s (it goes on)", args.wait);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
