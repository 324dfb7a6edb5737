//! The `sluice` binary: the broker daemon (`serve`), command-line tools (`topic`, `produce`, `consume`,
//! `group`), a live view of brokers' metrics (`top`) and load generators (`bench`).

mod bench;
mod cli;
mod layout;
mod scram_args;
mod serve;
mod top;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sluice", version, about = "Kafka-compatible streaming storage broker, thread-per-core on io_uring")]
struct Cli {
    /// Log lines as text or as one JSON object per line (default: $SLUICE_LOG_FORMAT, else text). `RUST_LOG`
    /// picks what is logged either way.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines (`--log-format`, or
/// `SLUICE_LOG_FORMAT=json`). JSON lines carry the event's fields and those of the spans it happened in, so a
/// request's API, version, client id and correlation id come with every line logged while serving it.
fn init_logging(format: Option<LogFormat>) -> anyhow::Result<()> {
    let format = match format {
        Some(format) => format,
        None => match std::env::var("SLUICE_LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "text") => LogFormat::Text,
            Ok("json") => LogFormat::Json,
            Ok(other) => anyhow::bail!("SLUICE_LOG_FORMAT={other}: expected text or json"),
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: listens on 0.0.0.0:9092, keeps data in ./sluice-data, one shard per core.
    Serve(serve::ServeArgs),
    /// Create, list, describe, delete topics and change their configs.
    #[command(subcommand)]
    Topic(cli::TopicCommand),
    /// Produce lines from stdin as records.
    Produce(cli::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(cli::GroupCommand),
    /// Describe the cluster: the controller quorum and the brokers.
    #[command(subcommand)]
    Cluster(cli::ClusterCommand),
    /// Load generators.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A live view of brokers from their /metrics: top topics, request latency, replication health, lag.
    Top(top::TopArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Produce pre-encoded batches as fast as possible (or at --rate), pipelined, and report throughput and
    /// latency.
    Produce(bench::ProduceBenchArgs),
    /// Read a topic from the beginning with large fetches and report the rate.
    Consume(bench::ConsumeBenchArgs),
    /// Latency from produce to consume at a fixed rate.
    E2e(bench::E2eBenchArgs),
    /// Hold many idle connections open (for measuring their cost to the broker).
    Idle(bench::IdleBenchArgs),
}

fn main() {
    // A panic is a bug. One shard dying would leave the others waiting on it, so the process stops at once
    // (fail-stop); the next start recovers the logs.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("sluice: a thread panicked; stopping the process");
        std::process::abort();
    }));
    let cli = Cli::parse();
    if let Err(error) = init_logging(cli.log_format) {
        eprintln!("sluice: {error:#}");
        std::process::exit(2);
    }
    if !matches!(cli.command, Command::Serve(_)) {
        // A command-line tool whose output goes to a closed pipe (`| head`) stops quietly, as Unix tools do,
        // instead of failing on the write. The broker keeps SIGPIPE ignored: a closed socket is an error value.
        // The default disposition alone is not enough: a signal mask is inherited across exec, and with SIGPIPE
        // blocked by the parent the write fails with EPIPE instead, and `println!` panics. So it is unblocked too.
        // SAFETY: restoring a signal's default disposition and unblocking it, before any other thread exists;
        // the set is initialised by sigemptyset before use.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut pipe_only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe_only);
            libc::sigaddset(&mut pipe_only, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &pipe_only, std::ptr::null_mut());
        }
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topic(command) => cli::topic(command),
        Command::Produce(args) => cli::produce(args),
        Command::Consume(args) => cli::consume(args),
        Command::Group(command) => cli::group(command),
        Command::Cluster(command) => cli::cluster(command),
        Command::Bench(BenchCommand::Produce(args)) => bench::produce(args),
        Command::Bench(BenchCommand::Consume(args)) => bench::consume(args),
        Command::Bench(BenchCommand::E2e(args)) => bench::e2e(args),
        Command::Bench(BenchCommand::Idle(args)) => bench::idle(args),
        Command::Top(args) => top::run(args),
    };
    if let Err(error) = result {
        eprintln!("sluice: {error:#}");
        std::process::exit(1);
    }
}
