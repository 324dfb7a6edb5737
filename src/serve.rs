//! `sluice serve`: configuration, shard bootstrap, signals and clean shutdown.
//!
//! The main thread reads the configuration (Kafka's `server.properties` keys, `--set`, then the flags over
//! them; `layout.rs` says where the node listens and what it is), checks the environment (memlock, the ports,
//! the data directory and its identity), starts one pinned glommio executor per shard and waits. Each shard
//! joins the channel mesh, opens its engine and starts its replica manager; shard 0 also starts the node's
//! control plane (the controller quorum member, the broker's registration, the metadata it applies), serves
//! the controller listener and publishes each applied image to every shard. A node is ready once its broker
//! is unfenced (it has caught up with the metadata log); then every shard accepts clients and the main
//! thread logs one "ready to serve" line.
//!
//! SIGTERM or SIGINT: the accept loops stop, the broker asks the controller to move its leaderships away
//! (controlled shutdown), the quorum member stops, each shard closes its logs, and when all have, the
//! clean-shutdown marker is written. A second signal exits at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_engine::manager::{take_clean_shutdown_marker, write_clean_shutdown_marker};
use sluice_engine::{LogManager, ManagerOptions};
use sluice_net::admin::{AdminSettings, Readiness};
use sluice_net::cluster::{spawn_publisher, start_replicas};
use sluice_net::peer::client::PeerClient;
use sluice_net::server::{accept_loop, bind_listener, ConnectionLimits};
use sluice_net::shard::{BrokerSettings, Envelope, Shard};
use sluice_replication::broker::{BrokerState, LifecycleSettings};
use sluice_replication::config::{broker, EffectiveConfig, StaticConfig};
use sluice_replication::controller::ControllerSettings;
use sluice_replication::node::{ClusterNode, NodeSettings};
use sluice_replication::quorum::identity::{self, Identity};
use sluice_replication::transport::PeerService;

use crate::layout::{layout, AdminListener, Layout, Overrides};

/// Locked memory each glommio executor needs for its io_uring rings.
const IO_MEMORY_BYTES: usize = 512 << 10;
/// How long a stopping quorum leader waits for another voter to take over before it stops anyway.
const QUORUM_HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a controlled shutdown may take before the broker stops anyway.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on for clients (default: `listeners` from the config, else 0.0.0.0:9092).
    #[arg(long)]
    pub listen: Option<String>,
    /// Address clients are told to connect to (default: `advertised.listeners`, else localhost and the
    /// listen port, or the listen host).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data directory (default: `log.dirs`, else ./sluice-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of shards (default: one per available core).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Node id (default: `node.id`, else 0).
    #[arg(long)]
    pub node_id: Option<i32>,
    /// A Kafka-style server.properties file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A config value, KEY=VALUE, with Kafka's names; repeatable, applied after --config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// For a controller voter whose data directory was lost: take part again with an empty log. It copies the
    /// committed log from the other voters and votes only once it holds it.
    #[arg(long)]
    pub rejoin_with_empty_log: bool,
    /// A SCRAM credential to add at start if the user has none for that mechanism, in `kafka-storage format
    /// --add-scram`'s form: `SCRAM-SHA-256=[name=alice,password=alice-secret]` (optionally `,iterations=N`);
    /// repeatable. How the first user of a SASL_PLAINTEXT listener gets in.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=N,password=P]")]
    pub add_scram: Vec<String>,
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

fn static_config(args: &ServeArgs) -> anyhow::Result<StaticConfig> {
    let mut config = StaticConfig::default();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        for (key, value) in StaticConfig::parse_properties(&text).with_context(|| format!("in {}", path.display()))? {
            config.set(&key, &value).with_context(|| format!("in {}", path.display()))?;
        }
    }
    for pair in &args.set {
        let (key, value) = pair.split_once('=').with_context(|| format!("--set {pair}: expected KEY=VALUE"))?;
        config.set(key.trim(), value.trim()).with_context(|| format!("--set {pair}"))?;
    }
    Ok(config)
}

fn check_memlock(shards: usize) -> anyhow::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Ok(());
    }
    let needed = (shards * IO_MEMORY_BYTES + (512 << 10)) as u64;
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < needed {
        bail!(
            "the locked-memory limit is {} KiB, and {shards} shard(s) need {} KiB for io_uring: raise it \
             (`ulimit -l {}` or LimitMEMLOCK= in systemd) or run fewer shards with --shards",
            limit.rlim_cur / 1024,
            needed / 1024,
            needed / 1024
        );
    }
    Ok(())
}

/// Refuses to start on a port another process listens on. A connect test, not a bind: a bind also trips
/// over the TIME_WAIT sockets a killed broker leaves behind, and SO_REUSEPORT would let a second broker of
/// this user share the port silently. A broker killed a moment ago can still hold its listener while the
/// kernel tears down its io_uring asynchronously, so a taken port gets a few seconds to clear.
fn check_port_free(listen: SocketAddr) -> anyhow::Result<()> {
    let probe = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    let mut attempts = 0;
    while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(500)).is_ok() {
        attempts += 1;
        if attempts == 50 {
            bail!("cannot listen on {listen}: another process is already listening there");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The control plane's settings, from the layout and the static configuration.
fn node_settings(layout: &Layout, config: &StaticConfig, rejoin_with_empty_log: bool) -> NodeSettings {
    let dynamic = BTreeMap::new();
    let effective = EffectiveConfig::new(config, &dynamic);
    let millis = |value: i64| Duration::from_millis(u64::try_from(value).unwrap_or(0));
    let session_timeout = millis(i64::from(effective.get(broker::BROKER_SESSION_TIMEOUT_MS)));
    let rebalance_interval = effective.get(broker::AUTO_LEADER_REBALANCE_ENABLE).then(|| {
        Duration::from_secs(
            u64::try_from(effective.get(broker::LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS)).unwrap_or(300),
        )
    });
    // 50 ms ticks: raft-rs draws each election timeout from [election, 2 x election) in whole ticks, so finer
    // ticks make two voters timing out together, and splitting the vote, rarer.
    let quorum_tick = Duration::from_millis(50);
    let election_timeout = millis(i64::from(effective.get(broker::CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS)));
    let election_ticks = (election_timeout.as_millis() / quorum_tick.as_millis()).max(2) as usize;
    NodeSettings {
        node_id: layout.node_id,
        roles: layout.roles,
        voters: layout.voters.clone(),
        data_dir: layout.data_dir.clone(),
        controller: ControllerSettings { static_config: config.clone(), session_timeout, rebalance_interval },
        broker: layout.roles.broker.then(|| LifecycleSettings {
            node_id: layout.node_id,
            host: layout.advertised_host.clone(),
            port: layout.advertised_port,
            rack: layout.rack.clone(),
            heartbeat_interval: millis(i64::from(effective.get(broker::BROKER_HEARTBEAT_INTERVAL_MS))),
            session_timeout,
            self_fence_after: session_timeout + 2 * election_timeout,
        }),
        quorum_tick,
        election_ticks,
        rejoin_with_empty_log,
    }
}

/// What every shard's task needs from the main thread.
#[derive(Clone)]
struct Startup {
    settings: Arc<BrokerSettings>,
    node: NodeSettings,
    identity: Identity,
    controller_listener: Option<SocketAddr>,
    admin_listener: Option<AdminListener>,
    clean: bool,
    stop: Arc<AtomicBool>,
    /// A reason to stop that is an error (a refused data directory, another cluster's node).
    fatal: Arc<Mutex<Option<String>>>,
    ready: mpsc::Sender<Result<usize, String>>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    /// Set once shard 0 finished its controlled shutdown: the other shards keep serving until then.
    handed_over: Arc<AtomicBool>,
    /// `--add-scram` credentials, added by shard 0 once the node serves.
    scram: Vec<crate::scram_args::AddScram>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if sluice_net::handlers::produce::unsafe_ack_on_leader_append() {
        tracing::error!(
            "SLUICE_UNSAFE_ACK_ON_LEADER_APPEND=1: acks=all is answered before the followers have the records. \
             This broker loses acknowledged writes on failover; it exists only to test the fault checker."
        );
    }
    let static_config = static_config(&args)?;
    for key in static_config.ignored_keys() {
        tracing::info!(key, "a Kafka setting Sluice does not use (thread pools, socket buffers, ...): ignored");
    }
    let overrides = Overrides {
        listen: args.listen.clone(),
        advertise: args.advertise.clone(),
        data_dir: args.data_dir.clone(),
        node_id: args.node_id,
    };
    let layout = layout(&static_config, &overrides)?;
    let shards = args.shards.unwrap_or_else(available_cores).max(1);
    check_memlock(shards)?;
    std::fs::create_dir_all(&layout.data_dir)
        .with_context(|| format!("creating data dir {}", layout.data_dir.display()))?;
    let data_dir = layout.data_dir.canonicalize().unwrap_or(layout.data_dir.clone());
    let identity = identity::load_or_create(&data_dir, layout.node_id).context("the data directory's identity")?;
    if let Some(listen) = layout.client_listener {
        check_port_free(listen)?;
    }
    if let Some(listen) = layout.controller_listener {
        check_port_free(listen)?;
    }
    let clean = take_clean_shutdown_marker(&data_dir).context("reading the clean-shutdown marker")?;
    let node = node_settings(
        &Layout { data_dir: data_dir.clone(), ..layout.clone() },
        &static_config,
        args.rejoin_with_empty_log,
    );
    let settings = Arc::new(BrokerSettings {
        node_id: layout.node_id,
        listen: layout.client_listener,
        advertised_host: layout.advertised_host.clone(),
        advertised_port: layout.advertised_port,
        data_dir: data_dir.clone(),
        shards,
        static_config,
        sasl_mechanisms: layout.sasl_mechanisms.clone(),
    });

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }

    let mesh = MeshBuilder::<Envelope, _>::full(shards, 1024);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let startup = Startup {
        settings: settings.clone(),
        node,
        identity,
        controller_listener: layout.controller_listener,
        admin_listener: layout.admin_listener,
        clean,
        stop: stop.clone(),
        fatal: Arc::new(Mutex::new(None)),
        ready: ready_tx,
        started: Arc::new(AtomicUsize::new(0)),
        finished: Arc::new(AtomicUsize::new(0)),
        handed_over: Arc::new(AtomicBool::new(false)),
        scram: args.add_scram.iter().map(|text| crate::scram_args::parse(text)).collect::<anyhow::Result<_>>()?,
    };
    let fatal = startup.fatal.clone();
    let cores = available_cores();
    let mut executors = Vec::with_capacity(shards);
    for index in 0..shards {
        let (startup, mesh) = (startup.clone(), mesh.clone());
        let executor = LocalExecutorBuilder::new(Placement::Fixed(index % cores))
            .name(&format!("shard-{index}"))
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move {
                let ready = startup.ready.clone();
                let result = shard_main(startup, mesh).await;
                if let Err(error) = &result {
                    let _ = ready.send(Err(format!("{error:#}")));
                }
                result
            })
            .map_err(|error| anyhow::anyhow!("starting shard {index}: {error}"))?;
        executors.push(executor);
    }
    drop(startup);
    let mut ready = 0;
    while ready < shards {
        match ready_rx.recv() {
            Ok(Ok(_)) => ready += 1,
            Ok(Err(error)) => {
                stop.store(true, Ordering::SeqCst);
                for executor in executors {
                    let _ = executor.join();
                }
                bail!("startup failed: {error}");
            }
            Err(_) => break,
        }
    }
    if ready == shards {
        tracing::info!(
            node_id = settings.node_id,
            listen = %settings.listen.map_or_else(|| "-".to_string(), |l| l.to_string()),
            advertised = %format!("{}:{}", settings.advertised_host, settings.advertised_port),
            controller_listener = %layout.controller_listener.map_or_else(|| "-".to_string(), |l| l.to_string()),
            shards,
            data_dir = %data_dir.display(),
            clean_start = clean,
            "sluice is ready to serve"
        );
    }
    let mut all_clean = true;
    for executor in executors {
        match executor.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                all_clean = false;
                tracing::error!(error = %format!("{error:#}"), "shard stopped with an error");
            }
            Err(error) => {
                all_clean = false;
                tracing::error!(%error, "shard panicked");
            }
        }
    }
    if let Some(reason) = fatal.lock().map(|f| f.clone()).unwrap_or(None) {
        bail!("{reason}");
    }
    if all_clean {
        write_clean_shutdown_marker(&data_dir).context("writing the clean-shutdown marker")?;
        tracing::info!("clean shutdown");
    } else {
        bail!("shutdown was not clean; the next start will recover the logs");
    }
    Ok(())
}

async fn wait_for(flag: impl Fn() -> bool) {
    while !flag() {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Shard 0's control plane: the node, its peer transport, the controller listener and the publisher.
fn start_control_plane(shard: &Rc<Shard>, startup: &Startup) -> anyhow::Result<Rc<ClusterNode>> {
    let peers = startup
        .node
        .voters
        .iter()
        .filter(|v| v.node_id != startup.node.node_id)
        .map(|v| {
            let addr = std::net::ToSocketAddrs::to_socket_addrs(&(v.host.as_str(), v.port))
                .ok()
                .and_then(|mut a| a.next())
                .with_context(|| format!("controller.quorum.voters: cannot resolve {}:{}", v.host, v.port))?;
            Ok((v.node_id, addr))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let transport = PeerClient::new(peers);
    let (fatal_slot, stop) = (startup.fatal.clone(), startup.stop.clone());
    let fatal = Rc::new(move |reason: String| {
        tracing::error!(%reason, "stopping");
        if let Ok(mut slot) = fatal_slot.lock() {
            slot.get_or_insert(reason);
        }
        stop.store(true, Ordering::SeqCst);
    });
    let node = ClusterNode::start(
        startup.node.clone(),
        startup.identity.clone(),
        shard.manager.clone(),
        transport.clone(),
        fatal,
    );
    let service: Rc<dyn PeerService> = node.clone();
    transport.set_service(Rc::downgrade(&service) as Weak<dyn PeerService>);
    if let Some(listen) = startup.controller_listener {
        let listener = bind_listener(listen).with_context(|| format!("controller listener on {listen}"))?;
        let stop = startup.stop.clone();
        glommio::spawn_local(async move {
            sluice_net::peer::server::serve(listener, service, wait_for(move || stop.load(Ordering::SeqCst))).await;
        })
        .detach();
    }
    shard.set_cluster(node.clone());
    spawn_publisher(shard, node.clone());
    Ok(node)
}

async fn shard_main(
    startup: Startup,
    mesh: MeshBuilder<Envelope, glommio::channels::channel_mesh::Full>,
) -> anyhow::Result<()> {
    let settings = startup.settings.clone();
    let stop = startup.stop.clone();
    let (senders, receivers) = if settings.shards > 1 {
        let (senders, receivers) =
            mesh.join().await.map_err(|error| anyhow::anyhow!("joining the shard mesh failed: {error}"))?;
        (Some(senders), Some(Rc::new(receivers)))
    } else {
        (None, None)
    };
    let id = senders.as_ref().map_or(0, |s| s.peer_id());
    let (retention_check_ms, prewrite_window_bytes, producer_expiration_check_ms, cleaner_backoff_ms) = {
        let dynamic = Default::default();
        let config = EffectiveConfig::new(&settings.static_config, &dynamic);
        (
            config.get(broker::LOG_RETENTION_CHECK_INTERVAL_MS),
            config.get(broker::LOG_SEGMENT_PREWRITE_BYTES),
            config.get(broker::PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS),
            config.get(broker::LOG_CLEANER_BACKOFF_MS),
        )
    };
    let options = ManagerOptions {
        retention_check_interval: Duration::from_millis(retention_check_ms.max(1) as u64),
        producer_expiration_check_interval: Duration::from_millis(producer_expiration_check_ms.max(1) as u64),
        shards: settings.shards,
        cleaner_backoff: Duration::from_millis(cleaner_backoff_ms.max(1) as u64),
        ..ManagerOptions::default()
    }
    .with_prewrite_window(prewrite_window_bytes.max(0) as u64);
    let manager = LogManager::new(&settings.data_dir, options, startup.clean);
    // The partitions this start opens sync what their recovery wrote with one syncfs, below, not one by one.
    manager.defer_recovery_sync();
    manager.spawn_background();
    let shard = Shard::new(id, settings.clone(), manager.clone(), senders);
    if let Some(receivers) = &receivers {
        for peer in (0..settings.shards).filter(|peer| *peer != id) {
            glommio::spawn_local(shard.clone().serve_peer(receivers.clone(), peer)).detach();
        }
    }
    start_replicas(&shard);
    let node = if id == 0 { Some(start_control_plane(&shard, &startup)?) } else { None };
    if id == 0 {
        start_admin_listener(&shard, &startup, node.clone())?;
    }
    // Until this node serves: its broker unfenced, so the image it publishes is caught up; other shards wait
    // until they have applied one.
    match &node {
        Some(node) => wait_for(|| (node.serving() && shard.applied_version() > 0) || stop.load(Ordering::SeqCst)).await,
        None => wait_for(|| shard.applied_version() > 0 || stop.load(Ordering::SeqCst)).await,
    }
    if stop.load(Ordering::SeqCst) && startup.fatal.lock().map(|f| f.is_some()).unwrap_or(false) {
        if let Some(node) = &node {
            node.stop();
        }
        let _ = manager.shutdown().await;
        let reason = startup.fatal.lock().ok().and_then(|f| f.clone()).unwrap_or_default();
        bail!("{reason}");
    }
    shard.set_aside_orphans().await;
    if let Some(method) = manager.sync_recovered().await.context("making the recovered logs durable")? {
        tracing::info!(shard = id, ?method, "recovered logs made durable");
    }
    shard.spawn_group_housekeeping();
    if id == 0 {
        spawn_memory_trim();
        crate::scram_args::add_missing(&shard, &startup.scram).await?;
    }
    let listener = match settings.listen {
        Some(listen) => Some(bind_listener(listen).with_context(|| format!("shard {id}: listening on {listen}"))?),
        None => None,
    };
    let limits = ConnectionLimits::from_shard(&shard);
    let _ = startup.ready.send(Ok(id));
    // Accept only once every shard is ready. Until then connections wait in the backlog: a shard that
    // accepted early would answer metadata for partitions another shard had not opened yet.
    startup.started.fetch_add(1, Ordering::SeqCst);
    wait_for(|| startup.started.load(Ordering::SeqCst) >= settings.shards || stop.load(Ordering::SeqCst)).await;
    let stop_requested = {
        let stop = stop.clone();
        async move { wait_for(|| stop.load(Ordering::SeqCst)).await }
    };
    match listener {
        Some(listener) => accept_loop(shard.clone(), listener, limits, stop_requested).await,
        None => stop_requested.await,
    }
    tracing::info!(shard = id, connections = shard.connections.get(), "stopping");
    if let Some(node) = &node {
        // Leaderships move away first, while this broker still serves the requests it has.
        if let Some(lifecycle) = node.lifecycle().filter(|_| !startup.node.voters.is_empty()) {
            if lifecycle.controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT).await {
                tracing::info!("controlled shutdown: leaderships moved");
            } else {
                tracing::warn!("controlled shutdown did not finish in time; stopping anyway");
            }
        }
        if startup.node.voters.len() > 1 {
            node.resign_quorum_leadership(QUORUM_HANDOVER_TIMEOUT).await;
        }
        startup.handed_over.store(true, Ordering::SeqCst);
        node.stop();
    } else {
        wait_for(|| startup.handed_over.load(Ordering::SeqCst)).await;
    }
    let result = manager.shutdown().await.context("closing the logs");
    // Stay up (answering peers) until every shard has closed its logs.
    startup.finished.fetch_add(1, Ordering::SeqCst);
    wait_for(|| startup.finished.load(Ordering::SeqCst) >= settings.shards).await;
    result
}

/// Whether this node serves, for `GET /health/ready`: every shard accepts clients and, with a broker role,
/// the broker is registered, unfenced (it caught up with the metadata log) and in session with the
/// controller; a controller-only node is ready once its quorum has a leader. Not ready while stopping.
fn readiness(startup: &Startup, node: Option<Rc<ClusterNode>>) -> Readiness {
    let (started, stop, shards) = (startup.started.clone(), startup.stop.clone(), startup.settings.shards);
    Rc::new(move || {
        if stop.load(Ordering::SeqCst) {
            return Err("shutting down".into());
        }
        if let Some(node) = &node {
            match node.lifecycle() {
                Some(lifecycle) => match lifecycle.state() {
                    BrokerState::Running if lifecycle.in_session() => {}
                    BrokerState::Running => {
                        return Err("no contact with the controller within the session: may be fenced".into())
                    }
                    state => return Err(format!("broker is {state:?}")),
                },
                None if node.serving() => {}
                None => return Err("the controller quorum has no leader".into()),
            }
        }
        let serving = started.load(Ordering::SeqCst);
        if serving < shards {
            return Err(format!("starting: {serving} of {shards} shards serve"));
        }
        Ok(())
    })
}

/// Shard 0's admin listener (`admin.listeners`), up from the start so that `/health/ready` says "starting",
/// and until every shard has closed its logs so that it says "shutting down". A listener the operator named
/// that cannot bind stops the start; the default one (port 9644 on the client listener's host) is only warned
/// about, so that a second local broker on the same host still starts.
fn start_admin_listener(shard: &Rc<Shard>, startup: &Startup, node: Option<Rc<ClusterNode>>) -> anyhow::Result<()> {
    let Some(admin) = startup.admin_listener else {
        tracing::info!("admin listener off (admin.listeners is empty)");
        return Ok(());
    };
    let listener = match sluice_net::admin::bind(admin.address) {
        Ok(listener) => listener,
        Err(error) if admin.explicit_host => {
            return Err(error).with_context(|| format!("admin.listeners: cannot listen on {}", admin.address))
        }
        Err(error) => {
            tracing::warn!(address = %admin.address, %error, "admin listener (the default) not started: set admin.listeners");
            return Ok(());
        }
    };
    let per_partition = {
        let dynamic = Default::default();
        let config = EffectiveConfig::new(&startup.settings.static_config, &dynamic);
        config.get(broker::METRICS_PER_PARTITION_ENABLED)
    };
    tracing::info!(address = %admin.address, per_partition, "admin listener: /metrics, /health/live, /health/ready");
    let settings = AdminSettings { per_partition, readiness: readiness(startup, node) };
    let (finished, shards) = (startup.finished.clone(), startup.settings.shards);
    let stop = wait_for(move || finished.load(Ordering::SeqCst) >= shards);
    glommio::spawn_local(sluice_net::admin::serve(shard.clone(), listener, settings, stop)).detach();
    Ok(())
}

/// How often freed heap memory goes back to the kernel.
const MEMORY_TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Returns freed heap memory to the kernel every [`MEMORY_TRIM_INTERVAL`]. Request frames of hundreds of KiB
/// come from glibc's heap (its mmap threshold rises after the first large free), and the heap keeps them
/// once freed: after a produce load the broker sat at 210-250 MB RSS with nothing to do. `malloc_trim` walks
/// every arena, so one shard calling it serves the process.
fn spawn_memory_trim() {
    glommio::spawn_local(async {
        loop {
            glommio::timer::sleep(MEMORY_TRIM_INTERVAL).await;
            // SAFETY: malloc_trim only releases free pages of glibc's own arenas; it takes their locks.
            unsafe { libc::malloc_trim(0) };
        }
    })
    .detach();
}
