//! `sluice serve`: configuration, shard bootstrap, signals and clean shutdown.
//!
//! The main thread reads the configuration, checks the environment (memlock, the port, the data directory),
//! starts one pinned glommio executor per shard and waits. Each shard joins the channel mesh, opens its engine
//! and, on shard 0, the controller, which replays the metadata log and publishes the image to every shard.
//! Once every shard listens, the main thread logs one "ready" line. SIGTERM or SIGINT stops the accept loops;
//! each shard closes its logs, and when all have, the clean-shutdown marker is written.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{bail, Context};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_engine::manager::{take_clean_shutdown_marker, write_clean_shutdown_marker};
use sluice_engine::{LogManager, ManagerOptions};
use sluice_net::server::{accept_loop, bind_listener, ConnectionLimits};
use sluice_net::shard::{BrokerSettings, Envelope, Shard};
use sluice_replication::config::{broker, EffectiveConfig, StaticConfig};
use sluice_replication::controller::Controller;
use sluice_replication::metadata::BrokerInfo;

/// Locked memory each glommio executor needs for its io_uring rings.
const IO_MEMORY_BYTES: usize = 512 << 10;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:9092")]
    pub listen: String,
    /// Address clients are told to connect to (default: localhost and the listen port, or the listen host).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data directory.
    #[arg(long, default_value = "./sluice-data")]
    pub data_dir: PathBuf,
    /// Number of shards (default: one per available core).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Broker id.
    #[arg(long, default_value_t = 0)]
    pub node_id: i32,
    /// A Kafka-style server.properties file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A config value, KEY=VALUE, with Kafka's names; repeatable, applied after --config.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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

fn advertised(listen: SocketAddr, advertise: Option<&str>) -> anyhow::Result<(String, i32)> {
    if let Some(advertise) = advertise {
        let (host, port) =
            advertise.rsplit_once(':').with_context(|| format!("--advertise {advertise}: expected HOST:PORT"))?;
        let port: u16 = port.parse().with_context(|| format!("--advertise {advertise}: bad port"))?;
        return Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)));
    }
    let host = if listen.ip().is_unspecified() { "localhost".to_string() } else { listen.ip().to_string() };
    Ok((host, i32::from(listen.port())))
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

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let static_config = static_config(&args)?;
    let listen = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {}: not an address", args.listen))?
        .next()
        .with_context(|| format!("--listen {}: resolves to nothing", args.listen))?;
    let (advertised_host, advertised_port) = advertised(listen, args.advertise.as_deref())?;
    let shards = args.shards.unwrap_or_else(available_cores).max(1);
    check_memlock(shards)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize().unwrap_or(args.data_dir.clone());
    // SO_REUSEPORT would let a second broker of this user share the port silently, so first check that
    // nothing listens there. A connect test, not a bind: a bind also trips over the TIME_WAIT sockets a
    // killed broker leaves behind.
    let probe = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    // A broker killed a moment ago can still hold its listener while the kernel tears down its io_uring
    // asynchronously, so a taken port gets a few seconds to clear.
    let mut attempts = 0;
    while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(500)).is_ok() {
        attempts += 1;
        if attempts == 50 {
            bail!("cannot listen on {listen}: another process is already listening there");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let clean = take_clean_shutdown_marker(&data_dir).context("reading the clean-shutdown marker")?;
    let settings = Arc::new(BrokerSettings {
        node_id: args.node_id,
        listen,
        advertised_host,
        advertised_port,
        data_dir: data_dir.clone(),
        shards,
        static_config,
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
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let cores = available_cores();
    let mut executors = Vec::with_capacity(shards);
    for index in 0..shards {
        let (settings, stop, ready, started, finished, mesh) =
            (settings.clone(), stop.clone(), ready_tx.clone(), started.clone(), finished.clone(), mesh.clone());
        let executor = LocalExecutorBuilder::new(Placement::Fixed(index % cores))
            .name(&format!("shard-{index}"))
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move {
                let result = shard_main(settings, clean, mesh, stop, ready.clone(), started, finished).await;
                if let Err(error) = &result {
                    let _ = ready.send(Err(format!("{error:#}")));
                }
                result
            })
            .map_err(|error| anyhow::anyhow!("starting shard {index}: {error}"))?;
        executors.push(executor);
    }
    drop(ready_tx);
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
    tracing::info!(
        node_id = settings.node_id,
        listen = %settings.listen,
        advertised = %format!("{}:{}", settings.advertised_host, settings.advertised_port),
        shards,
        data_dir = %data_dir.display(),
        clean_start = clean,
        "sluice is ready to serve"
    );
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
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

async fn shard_main(
    settings: Arc<BrokerSettings>,
    clean: bool,
    mesh: MeshBuilder<Envelope, glommio::channels::channel_mesh::Full>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<usize, String>>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let (senders, receivers) = if settings.shards > 1 {
        let (senders, receivers) =
            mesh.join().await.map_err(|error| anyhow::anyhow!("joining the shard mesh failed: {error}"))?;
        (Some(senders), Some(Rc::new(receivers)))
    } else {
        (None, None)
    };
    let id = senders.as_ref().map_or(0, |s| s.peer_id());
    let (retention_check_ms, prewrite_window_bytes) = {
        let dynamic = Default::default();
        let config = EffectiveConfig { static_config: &settings.static_config, dynamic: &dynamic };
        (config.get(broker::LOG_RETENTION_CHECK_INTERVAL_MS), config.get(broker::LOG_SEGMENT_PREWRITE_BYTES))
    };
    let options = ManagerOptions {
        retention_check_interval: Duration::from_millis(retention_check_ms.max(1) as u64),
        ..ManagerOptions::default()
    }
    .with_prewrite_window(prewrite_window_bytes.max(0) as u64);
    let manager = LogManager::new(&settings.data_dir, options, clean);
    // The partitions this start opens sync what their recovery wrote with one syncfs, below, not one by one.
    manager.defer_recovery_sync();
    manager.spawn_background();
    let shard = Shard::new(id, settings.clone(), manager.clone(), senders);
    if let Some(receivers) = &receivers {
        for peer in (0..settings.shards).filter(|peer| *peer != id) {
            glommio::spawn_local(shard.clone().serve_peer(receivers.clone(), peer)).detach();
        }
    }
    if id == 0 {
        let local = BrokerInfo {
            node_id: settings.node_id,
            host: settings.advertised_host.clone(),
            port: settings.advertised_port,
            rack: None,
        };
        let controller = Rc::new(Controller::open(&manager, local).await.context("opening the metadata log")?);
        shard.set_controller(controller.clone());
        shard.ensure_internal_topics(&controller).await.context("creating __consumer_offsets")?;
        shard.publish(controller.image()).await;
    } else {
        // Until this shard has opened its partitions of the first image, not just received it.
        wait_for(|| shard.applied_version() > 0 || stop.load(Ordering::SeqCst)).await;
    }
    shard.set_aside_orphans().await;
    if manager.sync_recovered().await.context("making the recovered logs durable")? {
        tracing::info!(shard = id, "recovered logs made durable with one syncfs");
    }
    shard.spawn_group_housekeeping();
    if id == 0 {
        spawn_memory_trim();
    }
    let listener =
        bind_listener(settings.listen).with_context(|| format!("shard {id}: listening on {}", settings.listen))?;
    let limits = ConnectionLimits::from_shard(&shard);
    let _ = ready.send(Ok(id));
    // Accept only once every shard has opened its partitions. Until then connections wait in the backlog:
    // a shard that accepted early would answer metadata for partitions another shard had not opened yet.
    started.fetch_add(1, Ordering::SeqCst);
    wait_for(|| started.load(Ordering::SeqCst) >= settings.shards || stop.load(Ordering::SeqCst)).await;
    let stop_requested = {
        let stop = stop.clone();
        async move { wait_for(|| stop.load(Ordering::SeqCst)).await }
    };
    accept_loop(shard.clone(), listener, limits, stop_requested).await;
    tracing::info!(shard = id, connections = shard.connections.get(), "stopping");
    let result = manager.shutdown().await.context("closing the logs");
    // Stay up (answering peers) until every shard has closed its logs.
    finished.fetch_add(1, Ordering::SeqCst);
    wait_for(|| finished.load(Ordering::SeqCst) >= settings.shards).await;
    result
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
