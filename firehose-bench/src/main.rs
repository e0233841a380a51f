//! `firehose-bench`: the load and benchmark tool (see the crate docs and `--help`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use firehose_bench::backfill::{self, BackfillOptions, Via};
use firehose_bench::connector::{self, ConnectorOptions, ConnectorTarget};
use firehose_bench::fanout::{self, FanoutOptions, Target};
use firehose_bench::history::{self, HistoryOptions, HistoryTarget};
use firehose_bench::report::Report;

/// Load and benchmark tool for firehose-rs: every figure in the README is one of these
/// commands. Prints a table, or one JSON object per run with --json.
///
/// Servers are started from the binaries beside this one (build them with
/// `cargo build --release --bins`), or measured where they already run (--url).
#[derive(Debug, Parser)]
#[command(name = "firehose-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Print one JSON object instead of the table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// N signed collectors against a distributor while receipts are appended to its data
    /// logs; deliveries/s, append→receive latency, lost/dup.
    Fanout {
        /// Collectors (up to 10,000; the fd limit is raised as far as the hard limit allows).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Receipts to append.
        #[arg(long, default_value_t = 1000)]
        entries: u64,
        /// Receipts per second (0: as fast as the writer can).
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Minimum size of each receipt, bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// An already running distributor (`ws://host:port`); its allow-list must hold the
        /// keys of `firehose-bench keys` (or it must not enforce one).
        #[arg(long, requires = "data_log_dir")]
        url: Option<String>,
        /// With --url: the data-log directory that distributor tails (the bench appends there).
        #[arg(long)]
        data_log_dir: Option<PathBuf>,
        /// With --url: its public key (hex) [default: the original's dev key].
        #[arg(long)]
        distributor_key: Option<String>,
        /// With --url: its process id, to report its memory.
        #[arg(long)]
        pid: Option<u32>,
        /// The firehose-distributor binary to start [default: beside this one].
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Measure the physical limit instead: a bare websocket broadcaster in this process
        /// (each message signed once, no logs, no auth, no queues), with the same collectors.
        #[arg(long, conflicts_with = "url")]
        raw: bool,
        /// Per-session queue of the started distributor (CLIENT_QUEUE_CAPACITY).
        #[arg(long, default_value_t = 8192)]
        queue: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        connect_concurrency: usize,
        /// Verify every message's signature in every collector (costs bench CPU).
        #[arg(long)]
        verify: bool,
        /// Seconds to wait for the last deliveries after the last append.
        #[arg(long, default_value_t = 30)]
        drain_timeout: u64,
        /// Entries per data-log file before the writer rotates.
        #[arg(long, default_value_t = 10_000)]
        log_file_entries: u64,
        /// Seed of the collector keys.
        #[arg(long, default_value_t = 1)]
        key_seed: u64,
    },
    /// Collectors that behave like relayer-collector (no `since`, reconnect after a delay)
    /// through a SIGTERM restart of the distributor while a simulated archiver writes: time
    /// until every collector is back live, refusals, duplicates, lost.
    Herd {
        /// Collectors.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Receipts a second the archiver writes.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Minimum size of each receipt, bytes.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Seconds of live streaming before the restart.
        #[arg(long, default_value_t = 10)]
        before: u64,
        /// Seconds the distributor is down.
        #[arg(long, default_value_t = 10)]
        outage: u64,
        /// Seconds the archiver goes on writing after the restart.
        #[arg(long, default_value_t = 40)]
        after: u64,
        /// A collector's wait before it subscribes again (relayer-collector: 10 s).
        #[arg(long, default_value_t = 10.0)]
        reconnect_delay: f64,
        /// Seconds to wait for the last receipts once the archiver stopped.
        #[arg(long, default_value_t = 60)]
        drain: u64,
        /// Handshakes started at once (then 50 ms apart).
        #[arg(long, default_value_t = 100)]
        connect_concurrency: usize,
        /// The firehose-distributor binary to start [default: beside this one].
        #[arg(long)]
        server_bin: Option<PathBuf>,
    },
    /// Collectors reading the whole history of a fixture database; entries/s.
    Backfill {
        /// `ws`: resume from the start over the websocket (`since`); `http`: the history API,
        /// 100 rows a page.
        #[arg(long, value_enum, default_value = "ws")]
        via: ViaArg,
        /// Collectors reading at the same time.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Cycles in the fixture database.
        #[arg(long, default_value_t = 100)]
        cycles: u64,
        /// Receipts and original transactions per cycle (each).
        #[arg(long, default_value_t = 500)]
        per_cycle: u64,
        /// Minimum size of each receipt, bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// The firehose-distributor binary to start [default: beside this one].
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Seed of the collector keys.
        #[arg(long, default_value_t = 2)]
        key_seed: u64,
    },
    /// Collectors syncing through the history HTTP API like relayer-collector (`/totalData`,
    /// then `/cycleinfo`, `/receipt`, `/originalTx` with `{start, end: start + 100}`); rows/s,
    /// request latency, server memory, lost/dup.
    History {
        /// Collectors syncing at the same time.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Cycles in the fixture database (when the bench starts the distributor).
        #[arg(long, default_value_t = 100)]
        cycles: u64,
        /// Receipts and original transactions per cycle (each).
        #[arg(long, default_value_t = 100)]
        per_cycle: u64,
        /// Minimum size of each receipt, bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// An already running distributor (`http://host:port`), ours or the original; its
        /// allow-list must hold the keys of `firehose-bench keys --key-seed 3`, or be off.
        #[arg(long)]
        url: Option<String>,
        /// With --url: its public key (hex) [default: the original's dev key].
        #[arg(long)]
        distributor_key: Option<String>,
        /// With --url: its process id, to report its memory.
        #[arg(long)]
        pid: Option<u32>,
        /// The firehose-distributor binary to start [default: beside this one].
        #[arg(long)]
        server_bin: Option<PathBuf>,
        /// Seed of the collector keys.
        #[arg(long, default_value_t = 3)]
        key_seed: u64,
    },
    /// Simulated observer nodes driving the ws-connector; blocks/s, MB/s, ack latency.
    Connector {
        /// Observer nodes (one connection and shard each).
        #[arg(long, default_value_t = 1)]
        observers: usize,
        /// Blocks per observer.
        #[arg(long, default_value_t = 1000)]
        blocks: u64,
        /// Approximate block size, bytes.
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// An already running connector in server mode (`host:port`).
        #[arg(long)]
        url: Option<String>,
        /// With --url: its process id, to report its memory.
        #[arg(long)]
        pid: Option<u32>,
        /// The firehose-ws-connector binary to start [default: beside this one].
        #[arg(long)]
        server_bin: Option<PathBuf>,
    },
    /// Prints the allow-list (`subscribers` of distributor-config.json) that admits the
    /// bench's collectors, for a distributor started elsewhere.
    Keys {
        /// Collectors.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Seed of the collector keys (the same as fanout's --key-seed).
        #[arg(long, default_value_t = 1)]
        key_seed: u64,
    },
}

/// `backfill --via`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ViaArg {
    /// Websocket resume.
    Ws,
    /// HTTP history API.
    Http,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report: Report = match cli.command {
        Cmd::Keys { clients, key_seed } => {
            let subs = firehose_bench::keys::subscribers(key_seed, clients);
            println!("{}", serde_json::to_string_pretty(&subs)?);
            return Ok(());
        }
        Cmd::Fanout {
            clients,
            entries,
            rate,
            size,
            url,
            data_log_dir,
            distributor_key,
            pid,
            server_bin,
            raw,
            queue,
            connect_concurrency,
            verify,
            drain_timeout,
            log_file_entries,
            key_seed,
        } => {
            let target = match (url, data_log_dir) {
                _ if raw => Target::Raw,
                (Some(url), Some(data_log_dir)) => Target::External {
                    url,
                    data_log_dir,
                    distributor_key: distributor_key
                        .unwrap_or_else(|| firehose_distributor::config::DEV_PUBLIC_KEY.to_owned()),
                    pid,
                },
                _ => Target::Spawn {
                    server_bin,
                    queue_capacity: queue,
                },
            };
            rt.block_on(fanout::run(FanoutOptions {
                target,
                clients,
                entries,
                rate,
                size,
                key_seed,
                connect_concurrency,
                drain_timeout: Duration::from_secs(drain_timeout),
                verify,
                max_log_entries: log_file_entries,
            }))?
        }
        Cmd::Herd {
            clients,
            rate,
            size,
            before,
            outage,
            after,
            reconnect_delay,
            drain,
            connect_concurrency,
            server_bin,
        } => rt.block_on(firehose_bench::herd::run(
            firehose_bench::herd::HerdOptions {
                server_bin,
                clients,
                rate,
                size,
                before: Duration::from_secs(before),
                outage: Duration::from_secs(outage),
                after: Duration::from_secs(after),
                reconnect_delay: Duration::try_from_secs_f64(reconnect_delay)
                    .map_err(|e| anyhow::anyhow!("--reconnect-delay {reconnect_delay}: {e}"))?,
                drain: Duration::from_secs(drain),
                connect_concurrency,
            },
        ))?,
        Cmd::Backfill {
            via,
            clients,
            cycles,
            per_cycle,
            size,
            server_bin,
            key_seed,
        } => rt.block_on(backfill::run(BackfillOptions {
            via: match via {
                ViaArg::Ws => Via::Websocket,
                ViaArg::Http => Via::Http,
            },
            server_bin,
            clients,
            cycles,
            per_cycle,
            size,
            key_seed,
            ..BackfillOptions::default()
        }))?,
        Cmd::History {
            clients,
            cycles,
            per_cycle,
            size,
            url,
            distributor_key,
            pid,
            server_bin,
            key_seed,
        } => {
            let target = match url {
                Some(url) => HistoryTarget::External {
                    url,
                    distributor_key: firehose_core::crypto::PublicKey::from_hex(
                        distributor_key
                            .as_deref()
                            .unwrap_or(firehose_distributor::config::DEV_PUBLIC_KEY),
                    )?,
                    pid,
                },
                None => HistoryTarget::Spawn {
                    server_bin,
                    cycles,
                    per_cycle,
                    size,
                },
            };
            rt.block_on(history::run(HistoryOptions {
                target,
                clients,
                key_seed,
            }))?
        }
        Cmd::Connector {
            observers,
            blocks,
            size,
            url,
            pid,
            server_bin,
        } => {
            let target = match url {
                Some(addr) => ConnectorTarget::External {
                    addr: addr.trim_start_matches("ws://").to_owned(),
                    pid,
                },
                None => ConnectorTarget::Spawn { server_bin },
            };
            rt.block_on(connector::run(ConnectorOptions {
                target,
                observers,
                blocks,
                size,
            }))?
        }
    };
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.table());
    }
    // Exit status tells scripts whether the run was lossless and error-free.
    let zero = |key: &str| report.get(key).is_none_or(|v| v == 0);
    if !(zero("lost") && zero("dup") && zero("client_errors")) {
        std::process::exit(2);
    }
    Ok(())
}
