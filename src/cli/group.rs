//! `sluice group`: list, describe and delete consumer groups and reset their offsets. Group requests go to
//! the group's coordinator; ListGroups asks every broker, as each coordinates its own share of the groups.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::*;
use sluice_net::client::Client;

use super::requests::{kafka_error, text, topic_name, Bootstrap};
use super::route::{list_offset, Router};

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
            let mut router = Router::connect(&bootstrap.bootstrap)?;
            let mut groups = BTreeMap::new();
            for broker in router.broker_ids()? {
                let (_, response): (_, ListGroupsResponse) =
                    router.broker(broker)?.send(ApiKey::ListGroups, &ListGroupsRequest::default())?;
                if response.error_code != 0 {
                    return Err(
                        kafka_error(response.error_code, None).context(format!("listing groups on broker {broker}"))
                    );
                }
                for g in response.groups {
                    groups.insert(g.group_id.to_string(), (g.group_state.to_string(), g.protocol_type.to_string()));
                }
            }
            for (group, (state, protocol)) in groups {
                println!("{group}\t{state}\t{protocol}");
            }
        }
        GroupCommand::Describe { group, bootstrap } => {
            let mut router = Router::connect(&bootstrap.bootstrap)?;
            let described = describe_group(router.coordinator(&group)?, &group)?;
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
            let offsets = group_offsets(router.coordinator(&group)?, &group)?;
            for ((topic, partition), committed) in &offsets {
                let end = list_offset(&mut router, topic, *partition, -1).unwrap_or(-1);
                let lag = if *committed >= 0 && end >= 0 { (end - committed).to_string() } else { "-".into() };
                let member = owner.get(&(topic.clone(), *partition)).map_or("-", String::as_str);
                println!("{topic}\t{partition}\t{committed}\t{end}\t{lag}\t{member}");
            }
        }
        GroupCommand::Delete { group, bootstrap } => {
            let mut router = Router::connect(&bootstrap.bootstrap)?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(&group))]);
            let (_, response): (_, DeleteGroupsResponse) =
                router.coordinator(&group)?.send(ApiKey::DeleteGroups, &request)?;
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
            let mut router = Router::connect(&bootstrap.bootstrap)?;
            if !(to_earliest || to_latest || to_offset.is_some() || shift_by.is_some()) {
                bail!("say where to: --to-earliest, --to-latest, --to-offset N or --shift-by N");
            }
            let described = describe_group(router.coordinator(&group)?, &group)?;
            let state = described.group_state.to_string();
            if state != "Empty" && state != "Dead" {
                bail!(
                    "group '{group}' is {state}: stop its consumers first (offsets of an active group cannot be reset)"
                );
            }
            let partitions = router.refresh(&topic)?;
            let committed = group_offsets(router.coordinator(&group)?, &group)?;
            let mut plan = Vec::new();
            for p in 0..partitions {
                let earliest = list_offset(&mut router, &topic, p, -2)?;
                let latest = list_offset(&mut router, &topic, p, -1)?;
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
            let (_, response): (_, OffsetCommitResponse) =
                router.coordinator(&group)?.send(ApiKey::OffsetCommit, &request)?;
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
