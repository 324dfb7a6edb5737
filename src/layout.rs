//! Where a node listens and what it is: Kafka's KRaft keys (`process.roles`, `node.id`,
//! `controller.quorum.voters`, `listeners`, `advertised.listeners`, `controller.listener.names`,
//! `listener.security.protocol.map`, `inter.broker.listener.name`, `log.dirs`, `broker.rack`) read from the
//! static configuration, with `sluice serve`'s flags over them.
//!
//! PLAINTEXT listeners, and a SASL_PLAINTEXT client listener on a single node (SCRAM, `crate::sasl` in `net`);
//! a listener mapped to SSL, SASL on a controller listener, or SASL in a cluster of several nodes (brokers do not
//! authenticate to each other yet) is refused at start with a clear error rather than served otherwise.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context};
use sluice_replication::config::{broker, EffectiveConfig, StaticConfig};
use sluice_replication::node::{Roles, Voter};
use sluice_replication::scram::ScramMechanism;

/// What `sluice serve` flags say, each overriding its configuration key when given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub advertise: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_id: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub node_id: i32,
    pub roles: Roles,
    /// Empty: a single node that is its own quorum of one.
    pub voters: Vec<Voter>,
    /// The client (and inter-broker) listener, for the broker role.
    pub client_listener: Option<SocketAddr>,
    /// The controller listener, for a voter of a quorum of more than one.
    pub controller_listener: Option<SocketAddr>,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub data_dir: PathBuf,
    pub rack: Option<String>,
    /// The operators' HTTP listener (`admin.listeners`); `None` when turned off.
    pub admin_listener: Option<AdminListener>,
    /// The SCRAM mechanisms of a SASL_PLAINTEXT client listener; empty for PLAINTEXT.
    pub sasl_mechanisms: Vec<ScramMechanism>,
}

/// `sasl.enabled.mechanisms`: SCRAM-SHA-256 and SCRAM-SHA-512 are served; Kafka's others are refused by name.
fn enabled_mechanisms(text: &str) -> anyhow::Result<Vec<ScramMechanism>> {
    let mut enabled = Vec::new();
    for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        match ScramMechanism::from_name(name) {
            Some(mechanism) => enabled.push(mechanism),
            None => bail!(
                "sasl.enabled.mechanisms: {name} is not served (Sluice serves SCRAM-SHA-256 and SCRAM-SHA-512; \
                 GSSAPI, PLAIN and OAUTHBEARER are not built)"
            ),
        }
    }
    if enabled.is_empty() {
        bail!("sasl.enabled.mechanisms is empty, so a SASL_PLAINTEXT listener could authenticate no one");
    }
    Ok(enabled)
}

/// Where the admin listener binds, and whether the operator named it or it is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListener {
    pub address: SocketAddr,
    /// `admin.listeners` gave the host (`host:port`); a default one (`:port`) that cannot bind is only warned about.
    pub explicit_host: bool,
}

/// `admin.listeners`: one `host:port`, `http://host:port` (or `NAME://host:port`, Redpanda's and Kafka's
/// listener style), or `:port` for the port on `default_host` (the client listener's host). Empty: off.
pub fn parse_admin_listener(text: &str, default_host: std::net::IpAddr) -> anyhow::Result<Option<AdminListener>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.contains(',') {
        bail!("admin.listeners: '{text}' names several listeners; Sluice serves one");
    }
    let address = text.split_once("://").map_or(text, |(_scheme, address)| address);
    let (host, port) = address.rsplit_once(':').with_context(|| format!("admin.listeners: '{text}' has no port"))?;
    let port: u16 = port.parse().with_context(|| format!("admin.listeners: '{text}' has a bad port"))?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Ok(Some(AdminListener { address: SocketAddr::new(default_host, port), explicit_host: false }));
    }
    let address = resolve(host, port).context("admin.listeners")?;
    Ok(Some(AdminListener { address, explicit_host: true }))
}

/// `NAME://host:port,...` → name → (host, port).
fn parse_listeners(key: &str, text: &str) -> anyhow::Result<BTreeMap<String, (String, u16)>> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, address) =
            item.split_once("://").with_context(|| format!("{key}: '{item}' is not NAME://host:port"))?;
        let (host, port) = address.rsplit_once(':').with_context(|| format!("{key}: '{item}' has no port"))?;
        let port: u16 = port.parse().with_context(|| format!("{key}: '{item}' has a bad port"))?;
        out.insert(name.trim().to_uppercase(), (host.trim_matches(['[', ']']).to_string(), port));
    }
    Ok(out)
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let bind_host = if host.is_empty() { "0.0.0.0" } else { host };
    (bind_host, port)
        .to_socket_addrs()
        .with_context(|| format!("{host}:{port} is not an address"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to nothing"))
}

pub fn layout(config: &StaticConfig, overrides: &Overrides) -> anyhow::Result<Layout> {
    let dynamic = BTreeMap::new();
    let effective = EffectiveConfig::new(config, &dynamic);
    let node_id = overrides.node_id.unwrap_or_else(|| effective.get(broker::NODE_ID));
    let roles_text = effective.get(broker::PROCESS_ROLES);
    let roles = Roles { broker: roles_text.contains("broker"), controller: roles_text.contains("controller") };
    let voters = Voter::parse_list(&effective.get(broker::CONTROLLER_QUORUM_VOTERS))
        .map_err(|reason| anyhow::anyhow!("controller.quorum.voters: {reason}"))?;
    if voters.is_empty() && !roles.controller {
        bail!("process.roles={roles_text} needs controller.quorum.voters to find the controllers");
    }
    if !roles.controller && voters.iter().any(|v| v.node_id == node_id) {
        bail!(
            "node.id={node_id} is a voter in controller.quorum.voters, but process.roles={roles_text} has no \
             controller: a node id names one node, so this is another node's id"
        );
    }
    if roles.controller && !voters.is_empty() && !voters.iter().any(|v| v.node_id == node_id) {
        bail!(
            "process.roles has controller but node.id={node_id} is not in controller.quorum.voters ({}): \
             Sluice's controllers are exactly the voters",
            Voter::list_text(&voters)
        );
    }
    let queued_bytes = effective.get(broker::QUEUED_MAX_REQUEST_BYTES);
    let frame_bytes = effective.get(broker::SOCKET_REQUEST_MAX_BYTES);
    if queued_bytes > 0 && queued_bytes < i64::from(frame_bytes) {
        bail!(
            "queued.max.request.bytes={queued_bytes} is below socket.request.max.bytes={frame_bytes}: a shard's \
             request budget must hold one request of the largest size (as Kafka requires)"
        );
    }
    let listeners = parse_listeners("listeners", &effective.get(broker::LISTENERS))?;
    let protocols: BTreeMap<String, String> = effective
        .get(broker::LISTENER_SECURITY_PROTOCOL_MAP)
        .split(',')
        .filter_map(|pair| pair.split_once(':'))
        .map(|(name, protocol)| (name.trim().to_uppercase(), protocol.trim().to_uppercase()))
        .collect();
    let controller_names: Vec<String> = effective
        .get(broker::CONTROLLER_LISTENER_NAMES)
        .split(',')
        .map(|name| name.trim().to_uppercase())
        .filter(|name| !name.is_empty())
        .collect();
    let protocol_of = |name: &String| protocols.get(name).cloned().unwrap_or_else(|| name.clone());
    for name in listeners.keys() {
        let protocol = protocol_of(name);
        let client_sasl = protocol == "SASL_PLAINTEXT" && !controller_names.contains(name);
        if protocol != "PLAINTEXT" && !client_sasl {
            bail!(
                "listener {name} uses {protocol}; Sluice serves PLAINTEXT listeners, and SASL_PLAINTEXT for clients, \
                 so far (TLS comes later), and will not serve a {protocol} listener in the clear"
            );
        }
    }
    let inter_broker = effective.get(broker::INTER_BROKER_LISTENER_NAME).trim().to_uppercase();
    let client_name = listeners
        .get_key_value(&inter_broker)
        .or_else(|| listeners.iter().find(|(name, _)| !controller_names.contains(name)))
        .map(|(name, _)| name.clone());
    let client = client_name.as_ref().and_then(|name| listeners.get(name)).cloned();
    let controller = listeners.iter().find(|(name, _)| controller_names.contains(name)).map(|(_, a)| a.clone());

    let client_listener = match (&overrides.listen, client, roles.broker) {
        (_, _, false) => None,
        (Some(listen), _, true) => Some(
            listen
                .to_socket_addrs()
                .with_context(|| format!("--listen {listen}: not an address"))?
                .next()
                .with_context(|| format!("--listen {listen}: resolves to nothing"))?,
        ),
        (None, Some((host, port)), true) => Some(resolve(&host, port).context("listeners")?),
        (None, None, true) => bail!("process.roles has broker but listeners has no client listener"),
    };
    let controller_listener = if roles.controller && !voters.is_empty() {
        let (host, port) = match controller {
            Some(address) => address,
            None => {
                let own = voters.iter().find(|v| v.node_id == node_id).map(|v| (v.host.clone(), v.port));
                own.context("no controller listener")?
            }
        };
        Some(resolve(&host, port).context("the controller listener")?)
    } else {
        None
    };

    let advertised_listeners = parse_listeners("advertised.listeners", &effective.get(broker::ADVERTISED_LISTENERS))?;
    let (advertised_host, advertised_port) = match (&overrides.advertise, client_listener) {
        (Some(advertise), _) => {
            let (host, port) =
                advertise.rsplit_once(':').with_context(|| format!("--advertise {advertise}: expected HOST:PORT"))?;
            let port: u16 = port.parse().with_context(|| format!("--advertise {advertise}: bad port"))?;
            (host.trim_matches(['[', ']']).to_string(), i32::from(port))
        }
        (None, Some(listen)) => match advertised_listeners
            .get(&inter_broker)
            .or_else(|| advertised_listeners.iter().find(|(n, _)| !controller_names.contains(n)).map(|(_, a)| a))
        {
            Some((host, port)) if overrides.listen.is_none() => (host.clone(), i32::from(*port)),
            _ => {
                let host = if listen.ip().is_unspecified() { "localhost".to_string() } else { listen.ip().to_string() };
                (host, i32::from(listen.port()))
            }
        },
        (None, None) => ("localhost".to_string(), 0),
    };
    let data_dir = match &overrides.data_dir {
        Some(dir) => dir.clone(),
        None => {
            let dirs = effective.get(broker::LOG_DIRS);
            let mut dirs = dirs.split(',').map(str::trim).filter(|d| !d.is_empty());
            let first = dirs.next().unwrap_or("./sluice-data").to_string();
            if dirs.next().is_some() {
                bail!("log.dirs names several directories; Sluice keeps one data directory per node (use one)");
            }
            PathBuf::from(first)
        }
    };
    let rack = Some(effective.get(broker::BROKER_RACK)).filter(|rack| !rack.trim().is_empty());
    let admin_host = client_listener
        .or(controller_listener)
        .map_or(std::net::IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED), |listener| listener.ip());
    let admin_listener = parse_admin_listener(&effective.get(broker::ADMIN_LISTENERS), admin_host)?;
    let sasl_mechanisms = match client_name.as_ref().map(&protocol_of).as_deref() {
        Some("SASL_PLAINTEXT") if roles.broker => {
            if voters.len() > 1 || !roles.controller {
                bail!(
                    "a SASL_PLAINTEXT client listener in a cluster of several nodes: followers fetch from leaders \
                     over the client listener, and Sluice does not authenticate between brokers yet; use PLAINTEXT \
                     listeners (with ACLs by host) for a cluster"
                );
            }
            enabled_mechanisms(&effective.get(broker::SASL_ENABLED_MECHANISMS))?
        }
        _ => Vec::new(),
    };
    Ok(Layout {
        node_id,
        roles,
        voters,
        sasl_mechanisms,
        client_listener,
        controller_listener,
        advertised_host,
        advertised_port,
        data_dir,
        rack,
        admin_listener,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> StaticConfig {
        let mut config = StaticConfig::default();
        for (key, value) in pairs {
            config.set(key, value).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        config
    }

    #[test]
    fn no_configuration_is_a_single_node_on_9092() {
        let layout = layout(&StaticConfig::default(), &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout.node_id, 0);
        assert!(layout.voters.is_empty() && layout.roles.broker && layout.roles.controller);
        assert_eq!(layout.client_listener.map(|a| a.port()), Some(9092));
        assert_eq!((layout.advertised_host.as_str(), layout.advertised_port), ("localhost", 9092));
        assert!(layout.controller_listener.is_none());
        assert_eq!(layout.data_dir, PathBuf::from("./sluice-data"));
    }

    #[test]
    fn a_kraft_combined_properties_file_is_read_as_kafka_reads_it() {
        let config = config(&[
            ("process.roles", "broker,controller"),
            ("node.id", "2"),
            ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.2:9093,3@127.0.0.3:9093"),
            ("listeners", "PLAINTEXT://127.0.0.2:9092,CONTROLLER://127.0.0.2:9093"),
            ("advertised.listeners", "PLAINTEXT://127.0.0.2:9092"),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("log.dirs", "/var/lib/sluice/data"),
            ("broker.rack", "a"),
            ("num.network.threads", "3"),
        ]);
        let layout = layout(&config, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout.node_id, 2);
        assert_eq!(layout.voters.len(), 3);
        assert_eq!(layout.client_listener.map(|a| a.to_string()), Some("127.0.0.2:9092".into()));
        assert_eq!(layout.controller_listener.map(|a| a.to_string()), Some("127.0.0.2:9093".into()));
        assert_eq!((layout.advertised_host.as_str(), layout.advertised_port), ("127.0.0.2", 9092));
        assert_eq!(layout.rack.as_deref(), Some("a"));
        assert_eq!(layout.data_dir, PathBuf::from("/var/lib/sluice/data"));
        // Flags win over the file.
        let flagged = Overrides { node_id: Some(7), data_dir: Some("/tmp/x".into()), ..Default::default() };
        assert!(layout_err(&config, &flagged).contains("not in controller.quorum.voters"));
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn the_admin_listener_defaults_to_9644_on_the_client_listeners_host() {
        let listen = |address: &str| Overrides { listen: Some(address.into()), ..Overrides::default() };
        let admin = |config: &StaticConfig, overrides: &Overrides| layout(config, overrides).unwrap().admin_listener;
        let default = config(&[]);
        assert_eq!(
            admin(&default, &listen("127.0.0.2:9092")),
            Some(AdminListener { address: "127.0.0.2:9644".parse().unwrap(), explicit_host: false })
        );
        assert_eq!(admin(&default, &Overrides::default()).map(|a| a.address.to_string()), Some("0.0.0.0:9644".into()));
        assert_eq!(admin(&config(&[("admin.listeners", "")]), &listen("127.0.0.2:9092")), None);
        for (text, expected) in [
            ("127.0.0.3:9700", "127.0.0.3:9700"),
            ("http://127.0.0.3:9701", "127.0.0.3:9701"),
            ("ADMIN://127.0.0.3:9702", "127.0.0.3:9702"),
            ("http://:9703", "127.0.0.2:9703"),
        ] {
            let found = admin(&config(&[("admin.listeners", text)]), &listen("127.0.0.2:9092")).unwrap();
            assert_eq!(found.address.to_string(), expected, "{text}");
        }
        for bad in ["127.0.0.1", "127.0.0.1:x", "127.0.0.1:1,127.0.0.1:2"] {
            assert!(layout(&config(&[("admin.listeners", bad)]), &Overrides::default()).is_err(), "{bad}");
        }
    }

    fn layout_err(config: &StaticConfig, overrides: &Overrides) -> String {
        layout(config, overrides).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn unsupported_and_inconsistent_settings_are_refused() {
        let ssl = config(&[("listeners", "SSL://0.0.0.0:9093"), ("listener.security.protocol.map", "SSL:SSL")]);
        assert!(layout_err(&ssl, &Overrides::default()).contains("TLS comes later"));
        // SASL is served on a single node's client listener, never on a controller listener or in a cluster.
        let sasl = config(&[("listeners", "SASL_PLAINTEXT://127.0.0.1:9093")]);
        let mechanisms = layout(&sasl, &Overrides::default()).map(|l| l.sasl_mechanisms).map_err(|e| e.to_string());
        assert_eq!(mechanisms, Ok(vec![ScramMechanism::Sha256, ScramMechanism::Sha512]));
        let plain = config(&[("listeners", "SASL_PLAINTEXT://127.0.0.1:9093"), ("sasl.enabled.mechanisms", "PLAIN")]);
        assert!(layout_err(&plain, &Overrides::default()).contains("PLAIN is not served"));
        let sasl_controller = config(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@127.0.0.1:9094,2@127.0.0.2:9094"),
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"),
        ]);
        assert!(layout_err(&sasl_controller, &Overrides::default()).contains("TLS comes later"));
        assert!(layout(&config(&[]), &Overrides::default()).is_ok_and(|l| l.sasl_mechanisms.is_empty()));
        let broker_only = config(&[("process.roles", "broker")]);
        assert!(layout_err(&broker_only, &Overrides::default()).contains("needs controller.quorum.voters"));
        let two_dirs = config(&[("log.dirs", "/a,/b")]);
        assert!(layout_err(&two_dirs, &Overrides::default()).contains("one data directory"));
        let small_budget = config(&[("queued.max.request.bytes", "1048575"), ("socket.request.max.bytes", "1048576")]);
        assert!(layout_err(&small_budget, &Overrides::default()).contains("below socket.request.max.bytes"));
        let fits = config(&[("queued.max.request.bytes", "1048576"), ("socket.request.max.bytes", "1048576")]);
        assert_eq!(layout_err(&fits, &Overrides::default()), "");
        let unbounded = config(&[("queued.max.request.bytes", "-1")]);
        assert_eq!(layout_err(&unbounded, &Overrides::default()), "");
    }
}
