//! `firehose-ws-connector`: receive MultiversX outport blocks, print `FIRE` lines on stdout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use firehose_ws_connector::config::{Config, Mode};
use firehose_ws_connector::output::{FirehoseFormat, LegacyFormat, OutputFormat, Writer};
use firehose_ws_connector::{Connector, Marshaller};

/// `--mode` (the library's [`Mode`], parsed here so that the library needs no CLI crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CliMode {
    /// The connector dials the node (`ws://host:port/save`) and redials after failures.
    Client,
    /// The connector listens; nodes dial it (route `/save`), many at once.
    Server,
}

impl From<CliMode> for Mode {
    fn from(m: CliMode) -> Mode {
        match m {
            CliMode::Client => Mode::Client,
            CliMode::Server => Mode::Server,
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `FIRE INIT 1.0 ...` then `FIRE BLOCK <nonce> <hash> <parent> <prev> <lib> <ts> <base64>`.
    Firehose,
    /// `FIRE BLOCK_BEGIN <nonce>` + `FIRE BLOCK_END <nonce> <prev> <ts> <hex payload>`.
    Legacy,
}

/// Receives blocks from MultiversX observer nodes over the websocket outport protocol and
/// prints them on stdout for a Firehose reader. Logs go to stderr; stdout carries only FIRE
/// lines. Each block is acked only after its line is written and flushed.
///
/// Settings come from `--config` (the original's `[web_socket]` TOML section; without the
/// flag, `config/config.toml` in the working directory when it exists, as the original reads
/// it), then environment variables, then flags (later wins).
#[derive(Debug, Parser)]
#[command(name = "firehose-ws-connector", version)]
struct Cli {
    /// The original's config.toml; only its `[web_socket]` section is read. Default:
    /// `config/config.toml` when it exists (the original's fixed path).
    #[arg(long, env = "FIREHOSE_WS_CONFIG")]
    config: Option<PathBuf>,
    /// `server`: listen for nodes on /save; `client`: dial a node's /save.
    #[arg(long, env = "FIREHOSE_WS_MODE")]
    mode: Option<CliMode>,
    /// Address: `host:port`, `:port` or `ws://host:port` (default localhost:22111).
    #[arg(long, env = "FIREHOSE_WS_URL")]
    url: Option<String>,
    /// Envelope encoding: `gogo protobuf` (default) or `json`.
    #[arg(long, env = "FIREHOSE_WS_MARSHALLER")]
    marshaller_type: Option<String>,
    /// Seconds between reconnection attempts in client mode (default 5).
    #[arg(long, env = "FIREHOSE_WS_RETRY_DURATION")]
    retry_duration: Option<u64>,
    /// Do not ack a block that could not be written (default true).
    #[arg(long, env = "FIREHOSE_WS_BLOCKING_ACK_ON_ERROR")]
    blocking_ack_on_error: Option<bool>,
    /// Output format.
    #[arg(
        long,
        value_enum,
        default_value = "firehose",
        env = "FIREHOSE_WS_OUTPUT_FORMAT"
    )]
    output_format: Format,
    /// Print timestamps in nanoseconds (what firehose-core parses) instead of the original's
    /// seconds.
    #[arg(long, env = "FIREHOSE_WS_TIMESTAMP_NANOS")]
    timestamp_nanos: bool,
    /// Print only blocks of this shard (4294967295 = metachain); others are acked, not printed.
    #[arg(long, env = "FIREHOSE_WS_SHARD")]
    shard: Option<u32>,
    /// Largest accepted websocket message (one block), in MiB (1 to 4096).
    #[arg(long, default_value_t = 128, env = "FIREHOSE_WS_MAX_MESSAGE_MIB",
        value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_message_mib: u64,
    /// Server mode: observers served at once (1 to 65536); more wait in the backlog.
    #[arg(long, default_value_t = 16, env = "FIREHOSE_WS_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_connections: u64,
    /// Server mode: MiB all observers together may hold (64 to 1048576). Each reserves its
    /// largest message and that block's lines (128 + 171 MiB by default, so 2048 serves 6 at
    /// once); observers that do not fit wait in the backlog.
    #[arg(long, default_value_t = 2048, env = "FIREHOSE_WS_MESSAGE_BUDGET_MIB",
        value_parser = clap::value_parser!(u64).range(64..=1048576))]
    message_budget_mib: u64,
    /// Serve Prometheus metrics on this address (`127.0.0.1:9101`), at `/metrics`: blocks
    /// received, written and acked per peer and topic, bytes written, write-to-ack latency,
    /// peers connected, the newest block per shard, frames refused by reason. Off by default;
    /// stdout is the same either way.
    #[arg(long, env = "FIREHOSE_WS_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Log level: an mx-chain-logger pattern (`*:INFO`, `*:DEBUG,process:TRACE`), a level
    /// (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, default_value = "*:INFO", env = "FIREHOSE_WS_LOG_LEVEL")]
    log_level: String,
    /// Also write the logs to `logs/ws-connector-firehose-<UTC time>.log`.
    #[arg(long, env = "FIREHOSE_WS_LOG_SAVE")]
    log_save: bool,
    /// No ANSI colours in the logs (they are off anyway when stderr is not a terminal).
    #[arg(long, env = "FIREHOSE_WS_DISABLE_ANSI_COLOR")]
    disable_ansi_color: bool,
}

/// Where the original keeps its configuration, relative to the working directory.
const DEFAULT_CONFIG: &str = "config/config.toml";

/// Logs to stderr, and to a file under `logs/` with `--log-save`.
fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let directives = firehose_ws_connector::logging::filter_directives(&cli.log_level)
        .map_err(|e| anyhow::anyhow!("--log-level {e}"))?;
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("--log-level `{}`", cli.log_level))?;
    let mut ansi = !cli.disable_ansi_color && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = if cli.log_save {
        std::fs::create_dir_all("logs").context("creating logs/")?;
        let name = firehose_ws_connector::logging::log_file_name(std::time::SystemTime::now());
        let path = std::path::Path::new("logs").join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        ansi = false;
        BoxMakeWriter::new(std::io::stderr.and(std::sync::Mutex::new(file)))
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .init();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli)?;

    let default = std::path::Path::new(DEFAULT_CONFIG);
    let mut cfg = match &cli.config {
        Some(p) => Config::from_file(p)?,
        None if default.is_file() => {
            tracing::info!(path = DEFAULT_CONFIG, "reading the configuration");
            Config::from_file(default)?
        }
        None => Config::default(),
    };
    if let Some(m) = cli.mode {
        cfg.mode = m.into();
    }
    if let Some(u) = &cli.url {
        cfg.url = u.clone();
    }
    if let Some(m) = &cli.marshaller_type {
        cfg.marshaller = Marshaller::from_config(m).with_context(|| {
            format!("--marshaller-type `{m}`: expected `gogo protobuf` or `json`")
        })?;
    }
    if let Some(r) = cli.retry_duration {
        anyhow::ensure!(r > 0, "--retry-duration must be > 0 seconds");
        cfg.retry_duration = Duration::from_secs(r);
    }
    if let Some(b) = cli.blocking_ack_on_error {
        cfg.blocking_ack_on_error = b;
    }
    cfg.shard = cli.shard.or(cfg.shard);
    // Range-checked above: these shifts cannot overflow.
    cfg.max_message_size = (cli.max_message_mib as usize) << 20;
    cfg.max_frame_size = cfg.max_message_size;
    cfg.max_connections = cli.max_connections as usize;
    cfg.message_budget = (cli.message_budget_mib as usize) << 20;

    let format: Arc<dyn OutputFormat> = match cli.output_format {
        Format::Firehose => Arc::new(FirehoseFormat {
            timestamp_nanos: cli.timestamp_nanos,
        }),
        Format::Legacy => Arc::new(LegacyFormat {
            timestamp_nanos: cli.timestamp_nanos,
        }),
    };
    let mut init = Vec::new();
    format.init(&mut init);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // A pipe (a Firehose reader) is written from the runtime; anything else by a thread.
    let stdout = {
        let _in_runtime = rt.enter();
        Writer::stdout(init)
    };
    let (writer, writer_thread) = match stdout {
        Ok(x) => x,
        // Nobody reads our output: nothing to do.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e).context("writing to stdout"),
    };
    let output = writer.clone();
    let metrics_listener = match cli.metrics_addr {
        Some(addr) => Some(
            rt.block_on(tokio::net::TcpListener::bind(addr))
                .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?,
        ),
        None => None,
    };
    let result = rt.block_on(async move {
        let connector = Connector::new(cfg, format, writer);
        if let Some(listener) = metrics_listener {
            tracing::info!(addr = %listener.local_addr()?, "serving metrics on /metrics");
            let metrics = connector.metrics().clone();
            tokio::spawn(firehose_ws_connector::metrics_http::serve(
                listener,
                metrics,
                std::future::pending(),
            ));
        }
        let result = connector.run(shutdown_signal()).await;
        // Lines handed to the pipe go out whole before the runtime stops.
        let _ = tokio::time::timeout(Duration::from_secs(2), output.finish()).await;
        result
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    // Every writer handle is gone: the thread finishes the block in hand and ends.
    if let Some(thread) = writer_thread {
        let _ = thread.join();
    }
    result.context("connector")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
