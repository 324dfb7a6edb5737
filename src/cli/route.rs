//! Routing for the command-line tools and `sluice bench`: what a Kafka client library does before it sends a
//! request. Metadata from the bootstrap broker names every broker and each partition's leader; requests for a
//! partition go to its leader and requests for a group to its coordinator. A leader that moved answers
//! NOT_LEADER_OR_FOLLOWER (or a topic just created has no leader yet): the router refreshes and the caller
//! retries, a bounded number of times. Against a single broker every route is that broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use sluice_net::client::Client;

use super::requests::{kafka_error, metadata, text, topic_name};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a route may stay unknown (no leader, or a coordinator loading) before the command gives up.
const ROUTE_WAIT: Duration = Duration::from_secs(15);
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Errors that mean "ask the metadata again and resend": the request went to the wrong broker or too early.
pub(crate) fn is_stale_route(code: i16) -> bool {
    [
        ResponseError::NotLeaderOrFollower,
        ResponseError::LeaderNotAvailable,
        ResponseError::UnknownTopicOrPartition,
        ResponseError::FencedLeaderEpoch,
        ResponseError::UnknownLeaderEpoch,
        ResponseError::NotCoordinator,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::CoordinatorLoadInProgress,
    ]
    .iter()
    .any(|e| e.code() == code)
}

pub(crate) struct Router {
    bootstrap: Client,
    /// Broker id -> "host:port" as advertised.
    brokers: BTreeMap<i32, String>,
    clients: BTreeMap<i32, Client>,
    /// (topic, partition) -> leader id, -1 when none.
    leaders: BTreeMap<(String, i32), i32>,
    partitions: BTreeMap<String, i32>,
}

impl Router {
    pub fn connect(bootstrap: &str) -> anyhow::Result<Router> {
        let bootstrap = super::requests::connect_any(bootstrap)?;
        Ok(Router {
            bootstrap,
            brokers: BTreeMap::new(),
            clients: BTreeMap::new(),
            leaders: BTreeMap::new(),
            partitions: BTreeMap::new(),
        })
    }

    /// The bootstrap connection, for requests any broker answers (metadata, admin requests it forwards).
    pub fn bootstrap(&mut self) -> &mut Client {
        &mut self.bootstrap
    }

    /// Reads the brokers and the topic's leaders again; returns its partition count. A topic the broker does
    /// not know is an error; one whose leaders are not elected yet is not (its partitions route nowhere until
    /// the next refresh).
    pub fn refresh(&mut self, topic: &str) -> anyhow::Result<i32> {
        let response = metadata(&mut self.bootstrap, Some(vec![topic.to_string()]))?;
        self.brokers = response.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
        self.clients.retain(|id, _| response.brokers.iter().any(|b| b.node_id.0 == *id));
        let found = response.topics.first().context("broker returned no topic")?;
        if found.error_code != 0 && found.error_code != ResponseError::LeaderNotAvailable.code() {
            return Err(kafka_error(found.error_code, None).context(format!("topic '{topic}'")));
        }
        self.leaders.retain(|(t, _), _| t != topic);
        for p in &found.partitions {
            self.leaders.insert((topic.to_string(), p.partition_index), p.leader_id.0);
        }
        let count = found.partitions.len() as i32;
        self.partitions.insert(topic.to_string(), count);
        Ok(count)
    }

    /// The advertised address of a broker.
    pub fn address(&self, broker: i32) -> anyhow::Result<&str> {
        self.brokers.get(&broker).map(String::as_str).with_context(|| format!("broker {broker} is not in the metadata"))
    }

    /// Groups partitions by their leader, refreshing until every one has a leader (or the wait runs out).
    pub fn by_leader(&mut self, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, Vec<i32>>> {
        let deadline = Instant::now() + ROUTE_WAIT;
        if !self.partitions.contains_key(topic) {
            self.refresh(topic)?;
        }
        loop {
            let mut routes: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            let mut missing = Vec::new();
            for &p in partitions {
                match self.leaders.get(&(topic.to_string(), p)) {
                    Some(&leader) if leader >= 0 && self.brokers.contains_key(&leader) => {
                        routes.entry(leader).or_default().push(p)
                    }
                    _ => missing.push(p),
                }
            }
            if missing.is_empty() {
                return Ok(routes);
            }
            if Instant::now() >= deadline {
                bail!("{topic}: no leader for partition(s) {missing:?} after {} s", ROUTE_WAIT.as_secs());
            }
            std::thread::sleep(RETRY_PAUSE);
            self.refresh(topic)?;
        }
    }

    /// The leader of one partition.
    pub fn leader_of(&mut self, topic: &str, partition: i32) -> anyhow::Result<i32> {
        let routes = self.by_leader(topic, &[partition])?;
        routes.into_keys().next().context("no route")
    }

    /// The connection to a broker, opened on first use.
    pub fn broker(&mut self, id: i32) -> anyhow::Result<&mut Client> {
        if !self.clients.contains_key(&id) {
            let address = self.address(id)?.to_string();
            let client = Client::connect(&address, CONNECT_TIMEOUT)
                .with_context(|| format!("connecting to broker {id} at {address}"))?;
            self.clients.insert(id, client);
        }
        self.clients.get_mut(&id).context("connection vanished")
    }

    /// Drops a broker's connection (after an I/O error); the next use reconnects.
    pub fn forget(&mut self, id: i32) {
        self.clients.remove(&id);
    }

    /// Pauses before a retry, then refreshes the topic's routes.
    pub fn backoff(&mut self, topic: &str, started: Instant) -> anyhow::Result<()> {
        if started.elapsed() >= ROUTE_WAIT {
            bail!("{topic}: the partition leaders kept moving for {} s", ROUTE_WAIT.as_secs());
        }
        std::thread::sleep(RETRY_PAUSE);
        self.refresh(topic).map(|_| ())
    }

    /// Every broker id in the cluster, from a fresh metadata request.
    pub fn broker_ids(&mut self) -> anyhow::Result<Vec<i32>> {
        let response = metadata(&mut self.bootstrap, Some(Vec::new()))?;
        self.brokers = response.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
        Ok(self.brokers.keys().copied().collect())
    }

    /// The connection to a group's coordinator (FindCoordinator, retried while the coordinator loads).
    pub fn coordinator(&mut self, group: &str) -> anyhow::Result<&mut Client> {
        let deadline = Instant::now() + ROUTE_WAIT;
        loop {
            let version = self.bootstrap.version_for::<FindCoordinatorRequest>(ApiKey::FindCoordinator)?;
            let request = if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![text(group)])
            } else {
                FindCoordinatorRequest::default().with_key(text(group))
            };
            let response: FindCoordinatorResponse =
                self.bootstrap.send_with_version(ApiKey::FindCoordinator, version, &request)?;
            let (code, message, node) = if version >= 4 {
                let c = response.coordinators.first().context("empty FindCoordinator response")?;
                (c.error_code, c.error_message.clone(), c.node_id.0)
            } else {
                (response.error_code, response.error_message.clone(), response.node_id.0)
            };
            if code == 0 {
                if !self.brokers.contains_key(&node) {
                    self.broker_ids()?;
                }
                return self.broker(node);
            }
            if !is_stale_route(code) || Instant::now() >= deadline {
                return Err(
                    kafka_error(code, message.as_ref()).context(format!("finding the coordinator of '{group}'"))
                );
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }
}

/// One partition's offset for a timestamp (-1 latest, -2 earliest), asked of its leader.
pub(crate) fn list_offset(router: &mut Router, topic: &str, partition: i32, timestamp: i64) -> anyhow::Result<i64> {
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let started = Instant::now();
    loop {
        let leader = router.leader_of(topic, partition)?;
        let sent: Result<(_, ListOffsetsResponse), _> = router.broker(leader)?.send(ApiKey::ListOffsets, &request);
        let code = match sent {
            Ok((_, response)) => {
                let result =
                    response.topics.first().and_then(|t| t.partitions.first()).context("empty ListOffsets response")?;
                if result.error_code == 0 {
                    return Ok(result.offset);
                }
                if !is_stale_route(result.error_code) {
                    return Err(kafka_error(result.error_code, None).context(format!("offsets of {topic}-{partition}")));
                }
                result.error_code
            }
            Err(error) => {
                router.forget(leader);
                tracing::debug!(%error, leader, "ListOffsets failed; refreshing the route");
                -1
            }
        };
        router
            .backoff(topic, started)
            .with_context(|| format!("offsets of {topic}-{partition} (last error {code})"))?;
    }
}
