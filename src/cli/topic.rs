//! `sluice topic`: create, list, describe, delete, reassign and reconfigure topics. Admin requests go to the
//! bootstrap broker, which forwards them to the controller; offsets come from each partition's leader.

use anyhow::{bail, Context};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::*;

use super::requests::{connect, kafka_error, key_value, metadata, text, topic_name, Bootstrap};
use super::route::{list_offset, Router};

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
    /// Move a partition's replicas (AlterPartitionReassignments), and follow its progress with --wait.
    Reassign(super::cluster::ReassignArgs),
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
            let mut router = Router::connect(&bootstrap.bootstrap)?;
            let response = metadata(router.bootstrap(), Some(vec![name.clone()]))?;
            let topic = response.topics.first().context("broker returned no topic")?;
            if topic.error_code != 0 {
                return Err(kafka_error(topic.error_code, None).context(format!("topic '{name}'")));
            }
            println!("topic {name}  id {}  partitions {}", topic.topic_id, topic.partitions.len());
            println!("partition\tleader\tepoch\treplicas\tisr\tstart\tend");
            let mut partitions = topic.partitions.clone();
            partitions.sort_by_key(|p| p.partition_index);
            for p in partitions {
                let start = list_offset(&mut router, &name, p.partition_index, -2).unwrap_or(-1);
                let end = list_offset(&mut router, &name, p.partition_index, -1).unwrap_or(-1);
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
            let (_, configs): (_, DescribeConfigsResponse) =
                router.bootstrap().send(ApiKey::DescribeConfigs, &request)?;
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
        TopicCommand::Reassign(args) => super::cluster::reassign(args)?,
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
