//! `firehose-distributor`: the Shardeum-compatible distributor (thin `main` over the library).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::archiver_sim::ArchiverSim;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;

/// Streams an archiver's data logs (cycles, original transactions, receipts) to authenticated
/// collectors over websockets, each entry signed once with the distributor key.
#[derive(Debug, Parser)]
#[command(name = "firehose-distributor", version)]
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
    /// Log level or tracing filter.
    #[arg(long, default_value = "info", global = true)]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Demo: a simulated archiver in a temporary directory, served on localhost.
    Demo {
        /// Seconds between simulated cycles.
        #[arg(long, default_value_t = 1.0)]
        cycle_seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level).context("--log-level")?,
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let demo = matches!(cli.command, Some(Command::Demo { .. }));
    let default_path = cli.config.as_os_str() == "distributor-config.json";
    let mut cfg = if cli.config.exists() {
        Config::from_file(&cli.config)?
    } else {
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
        Config::default()
    };
    cfg.apply_env(|k| std::env::var(k).ok())?;
    if let Some(p) = cli.port {
        cfg.port = p;
    }
    if let Some(d) = &cli.data_log_dir {
        cfg.data_log_dir = d.clone();
    }

    let mut _tmp = None;
    if let Some(Command::Demo { cycle_seconds }) = cli.command {
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
        let interval = Duration::from_secs_f64(cycle_seconds.max(0.01));
        std::thread::spawn(move || {
            if let Err(e) = sim.run(interval) {
                tracing::error!(error = %e, "archiver simulator stopped");
            }
        });
        _tmp = Some(dir);
    }

    let d = Distributor::new(cfg.clone())?;
    let addr = format!(
        "{}:{}",
        if demo { "127.0.0.1" } else { "0.0.0.0" },
        cfg.port
    );
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let _readers = d.start_readers().await?;
    println!(
        "distributor listening on ws://{addr}/ (public key {})",
        d.public_key()
    );
    if demo {
        println!("connect a collector: cargo run --example collector -- ws://{addr}");
    }
    spawn_reload(d.clone(), cli.config.clone());
    d.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGUSR1 (and a change of the file) reloads the subscriber list.
fn spawn_reload(d: Arc<Distributor>, path: PathBuf) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return;
        };
        let mut last = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            let forced = tokio::select! {
                _ = usr1.recv() => true,
                _ = tick.tick() => false,
            };
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if !forced && modified == last {
                d.close_disallowed(); // expiry sweep
                continue;
            }
            last = modified;
            match Config::from_file(&path) {
                Ok(c) => {
                    tracing::info!(
                        subscribers = c.subscribers.len(),
                        "reloaded {}",
                        path.display()
                    );
                    d.update_subscribers(c.limit_to_subscribers_only, c.subscribers);
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the current subscribers")
                }
            }
        }
    });
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
