//! What the tools share: the bootstrap flag, connecting, and building requests and reading their errors.

use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::Client;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct Bootstrap {
    /// Brokers to bootstrap from: host:port, or a comma-separated list (the first that answers is used).
    #[arg(long, default_value = "localhost:9092")]
    pub bootstrap: String,
}

pub(crate) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(crate) fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

pub(crate) fn kafka_error(code: i16, message: Option<&StrBytes>) -> anyhow::Error {
    let name = kafka_protocol::error::ResponseError::try_from_code(code)
        .map_or(format!("error {code}"), |e| format!("{e:?} ({code})"));
    match message {
        Some(message) if !message.is_empty() => anyhow::anyhow!("{name}: {message}"),
        _ => anyhow::anyhow!("{name}"),
    }
}

pub(crate) fn key_value(pair: &str) -> anyhow::Result<(String, String)> {
    let (key, value) = pair.split_once('=').with_context(|| format!("'{pair}': expected KEY=VALUE"))?;
    Ok((key.trim().to_string(), value.trim().to_string()))
}

pub(crate) fn connect(bootstrap: &Bootstrap) -> anyhow::Result<Client> {
    connect_any(&bootstrap.bootstrap)
}

/// Connects to the first reachable broker of a comma-separated bootstrap list, as Kafka clients do.
pub(crate) fn connect_any(list: &str) -> anyhow::Result<Client> {
    let mut last = None;
    for address in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match Client::connect(address, CONNECT_TIMEOUT) {
            Ok(client) => return Ok(client),
            Err(error) => last = Some(error),
        }
    }
    match last {
        Some(error) => Err(error.into()),
        None => anyhow::bail!("--bootstrap names no broker"),
    }
}

pub(crate) fn metadata(client: &mut Client, topics: Option<Vec<String>>) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect()
        }))
        .with_allow_auto_topic_creation(false);
    Ok(client.send(ApiKey::Metadata, &request)?.1)
}
