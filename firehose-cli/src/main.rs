//! `firehose`: the command line for operators and collector authors, on `firehose-client`.
//!
//! - `firehose tail` subscribes like a collector and prints verified records as JSON lines;
//! - `firehose history ROUTE [JSON]` signs a history request, verifies the reply, prints it;
//! - `firehose keygen` makes a collector key pair for `subscribers` and collector configs.
//!
//! Exit status: 0 done, 1 refused or failed verification (the reason on stderr), 2 bad usage.

mod history;
mod keys;
mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Talk to a firehose-rs (or Shardeum relayer) distributor from a shell: watch the live
/// stream, query its history, make keys. Every record and reply is checked against the
/// distributor's public key before it is printed.
#[derive(Debug, Parser)]
#[command(
    name = "firehose",
    version,
    after_help = "Examples:\n  \
firehose keygen --out collector-key.json\n  \
firehose tail --url ws://127.0.0.1:6100 --key-file collector-key.json --count 10\n  \
firehose history /totalData\n  \
firehose history /cycleinfo '{\"count\": 5}'\n  \
firehose history /receipt --all > receipts.jsonl"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level or tracing filter for the diagnostics on stderr (reconnects, retries).
    #[arg(long, default_value = "warn", global = true)]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Subscribe like a collector and print each verified record as a JSON line
    /// (`{"cycle": {...}}`, `{"originalTx": {...}}`, `{"receipt": {...}}`).
    Tail(tail::Args),
    /// Sign a request to a history route, verify the reply's signature and print the reply
    /// (`--all`: every row of a range, one JSON line each).
    History(history::Args),
    /// Make a Shardus key pair (Ed25519; public and secret key in hex) for a collector.
    Keygen(keys::KeygenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
    let (name, result) = match cli.command {
        Command::Keygen(args) => ("keygen", keys::keygen(&args)),
        Command::Tail(args) => (
            "tail",
            runtime().and_then(|rt| rt.block_on(tail::run(args))),
        ),
        Command::History(args) => (
            "history",
            runtime().and_then(|rt| rt.block_on(history::run(args))),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firehose {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
