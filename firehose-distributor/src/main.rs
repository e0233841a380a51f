//! `firehose-distributor`: the Shardeum-compatible distributor (thin `main` over the library).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use firehose_distributor::config::check::Report;
use firehose_distributor::config::source::ConfigSource;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;

/// Streams an archiver's data logs (cycles, original transactions, receipts) to authenticated
/// collectors over websockets, each entry signed once with the distributor key.
#[derive(Debug, Parser)]
#[command(
    name = "firehose-distributor",
    version,
    after_help = "Any key of distributor-config.json can also be set as the original takes it: \
as an environment variable (DISTRIBUTOR_PORT=6200, limitToSubscribersOnly=true) or as an \
argument (--DISTRIBUTOR_PORT 6200 --limitToSubscribersOnly true). Arguments beat the \
environment, which beats the file."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The config file (the original's keys). Environment variables with the same names
    /// override it, and flags override both.
    #[arg(long, default_value = "distributor-config.json", global = true)]
    config: PathBuf,
    /// DISTRIBUTOR_PORT.
    #[arg(long, global = true)]
    port: Option<u16>,
    /// DATA_LOG_DIR: the archiver's data-logs/<ip>_<port> directory.
    #[arg(long, global = true)]
    data_log_dir: Option<PathBuf>,
    /// ws: stream to collectors over websockets. mq: publish to RabbitMQ exchanges instead
    /// (RMQ_PROTOCOL, RMQ_HOST, RMQ_PORT, RMQ_USER, RMQ_PASS, RMQ_*_EXCHANGE_NAME; needs the
    /// archiver database). The HTTP API and /metrics are served in both modes.
    #[arg(
        long,
        env = "DISTRIBUTOR_MODE",
        value_enum,
        ignore_case = true,
        global = true
    )]
    mode: Option<Mode>,
    /// MQ mode: also declare durable queues <PREFIX>.cycles, <PREFIX>.originalTxs and
    /// <PREFIX>.receipts bound to the exchanges (a consumer group that works out of the box).
    #[arg(long, env = "MQ_QUEUE_PREFIX", global = true)]
    mq_queue_prefix: Option<String>,
    /// MQ mode: the cursor file [default: firehose-mq-state.json beside the config file].
    #[arg(long, env = "MQ_STATE_FILE", global = true)]
    mq_state_file: Option<PathBuf>,
    /// Log level or tracing filter.
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
    /// Start even if the config file has an unknown key that looks like a misspelt security
    /// setting (it is logged either way).
    #[arg(long, global = true)]
    allow_unknown_keys: bool,
}

/// What the distributor does with the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Websocket fan-out to collectors (the default).
    Ws,
    /// Publish to RabbitMQ.
    Mq,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Check the configuration without serving: keys, databases (opened read-only), the
    /// data-log directory and its pointer files, the allow-list. Prints a report; exits 0
    /// when nothing failed, 1 otherwise. Safe to run beside the running distributor.
    Check,
    /// Demo: a simulated archiver in a temporary directory, served on localhost.
    #[cfg(feature = "demo")]
    Demo {
        /// Seconds between simulated cycles.
        #[arg(long, default_value_t = 1.0)]
        cycle_seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    // The original's `--KEY value` overrides (any number, string or boolean config key) come
    // out first; the rest are this binary's flags.
    let (overrides, args) = Config::split_args(std::env::args());
    let cli = Cli::parse_from(args);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level).context("--log-level")?,
        )
        .init();
    let fds = firehose_distributor::http::listener::raise_fd_limit();
    tracing::debug!(fds, "file descriptor limit");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli, overrides))
}

async fn run(cli: Cli, overrides: Vec<(String, String)>) -> anyhow::Result<()> {
    #[cfg(feature = "demo")]
    let demo = matches!(cli.command, Some(Command::Demo { .. }));
    #[cfg(not(feature = "demo"))]
    let demo = false;
    let default_path = cli.config.as_os_str() == "distributor-config.json";
    if !cli.config.exists() {
        anyhow::ensure!(
            demo || default_path,
            "{}: no such file",
            cli.config.display()
        );
        if !demo {
            tracing::warn!(
                "no distributor-config.json here: using defaults, environment and flags"
            );
        }
    }
    // A reload (SIGUSR1, a changed file) builds the configuration from the same source.
    let source = ConfigSource::new(&cli.config)
        .optional(demo || default_path)
        .allow_unknown_keys(cli.allow_unknown_keys)
        .with_overrides(overrides);
    let check = matches!(cli.command, Some(Command::Check));
    let mut cfg = match source.load() {
        Ok(cfg) => cfg,
        Err(e) if check => return report(&cli.config, Report::unloadable(e)),
        Err(e) => return Err(e.into()),
    };
    // Resume points live beside the config file unless configured, as the MQ cursor does
    // (the working directory without a config file); the demo keeps them in memory.
    if cfg.resume_state_file.is_none() && !demo {
        let dir = cli
            .config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        cfg.resume_state_file = Some(dir.join("firehose-resume-state.json"));
    }
    // `--mode` / DISTRIBUTOR_MODE, else the file's `distributorMode`.
    let mq = cli.mode.map_or(cfg.is_mq(), |m| m == Mode::Mq);
    cfg.distributor_mode = Some(if mq { "MQ" } else { "WS" }.into());
    if let Some(p) = cli.port {
        cfg.port = p;
    }
    if let Some(d) = &cli.data_log_dir {
        cfg.data_log_dir = d.clone();
    }
    if check {
        let now = firehose_core::since::now_ms();
        return report(
            &cli.config,
            firehose_distributor::config::check::check(&cfg, mq, now),
        );
    }

    #[cfg(feature = "demo")]
    let _tmp = match cli.command {
        Some(Command::Demo { cycle_seconds }) => Some(demo_archiver(&mut cfg, cycle_seconds)?),
        _ => None,
    };
    let d = Distributor::new(cfg.clone())?;
    let addr = format!(
        "{}:{}",
        if demo { "127.0.0.1" } else { "0.0.0.0" },
        cfg.port
    );
    let listener = firehose_distributor::server::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    if mq {
        return run_mq(&cli, &cfg, d, listener).await;
    }
    let _readers = d.start_readers().await?;
    println!(
        "distributor listening on ws://{addr}/ (public key {})",
        d.public_key()
    );
    if demo {
        println!("connect a collector: cargo run --example collector -- ws://{addr}");
    }
    // SIGUSR1 or a change of the file reloads the subscriber list.
    let _reload = firehose_distributor::server::reload::watch(
        d.clone(),
        source,
        firehose_distributor::server::reload::POLL,
        true,
    );
    d.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The demo's simulated archiver, writing in a temporary directory (removed when the
/// returned handle drops); points `cfg` at it.
#[cfg(feature = "demo")]
fn demo_archiver(cfg: &mut Config, cycle_seconds: f64) -> anyhow::Result<tempfile::TempDir> {
    use firehose_dbstore::fixture::FixtureSpec;
    use firehose_sim::ArchiverSim;
    let dir = tempfile::Builder::new()
        .prefix("firehose-demo-")
        .tempdir()?;
    let spec = FixtureSpec {
        receipts_per_cycle: 20,
        txs_per_cycle: 20,
        receipt_bytes: 1024,
        ..FixtureSpec::default()
    };
    let sim = ArchiverSim::create(dir.path(), spec, 200)?;
    cfg.data_log_dir = sim.log_dir().to_owned();
    if let firehose_dbstore::Layout::Directory(db) = sim.layout() {
        cfg.archiver_db_dir = Some(db.clone());
    }
    cfg.ip = "127.0.0.1".into();
    println!("demo archiver writing to {}", dir.path().display());
    let interval = std::time::Duration::from_secs_f64(cycle_seconds.max(0.01));
    std::thread::spawn(move || {
        if let Err(e) = sim.run(interval) {
            tracing::error!(error = %e, "archiver simulator stopped");
        }
    });
    Ok(dir)
}

/// Prints `check`'s report; a failed check exits 1.
fn report(config: &std::path::Path, report: Report) -> anyhow::Result<()> {
    println!("firehose-distributor check: {}", config.display());
    print!("{report}");
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

/// MQ mode: the publisher, plus the HTTP API and /metrics on the listener (settings from the
/// environment and the flags).
async fn run_mq(
    cli: &Cli,
    cfg: &Config,
    d: Arc<Distributor>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    use firehose_distributor::mq::MqConfig;
    let state_dir = cli
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut mq = MqConfig::from_env(|k| std::env::var(k).ok(), state_dir)?;
    if let Some(p) = &cli.mq_queue_prefix {
        mq.queue_prefix = Some(p.clone()).filter(|p| !p.is_empty());
    }
    if let Some(f) = &cli.mq_state_file {
        mq.state_file = f.clone();
    }
    println!(
        "MQ mode: publishing to {} (exchanges {}, {}, {}); cursor in {}",
        mq.redacted_uri(),
        mq.exchanges.cycles,
        mq.exchanges.original_txs,
        mq.exchanges.receipts,
        mq.state_file.display()
    );
    firehose_distributor::server::mq::serve(d, cfg, mq, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
