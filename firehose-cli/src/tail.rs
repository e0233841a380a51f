//! `firehose tail`: subscribe like a collector, print verified records as JSON lines.

use std::io::Write as _;

use anyhow::Context as _;
use firehose_client::core::codec::Encoding;
use firehose_client::core::records::{DataType, Record};
use firehose_client::core::since::Since;
use firehose_client::{ClientConfig, ClientError, ResumingClient};

use crate::keys::KeyArgs;

/// `firehose tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The distributor's websocket address. Repeat it (or separate with commas) for
    /// distributors to fail over between; they must sign with the same --distributor-key.
    #[arg(long, default_value = "ws://127.0.0.1:6100", value_delimiter = ',')]
    url: Vec<String>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Start from this point instead of live: a cycle counter (`41`: cycle 41's record, its
    /// receipts and original txs, and everything after), or the wire's resume object, the
    /// last record of each type you have (`{"cycle": 41, "receipt": {"cycle": 41,
    /// "timestamp": ..., "id": "..."}}`).
    #[arg(long, conflicts_with = "resume")]
    since: Option<String>,
    /// Start where the distributor remembers this key's unbroken history ends (as a
    /// collector without `since` is resumed; a live run does not move that point when the
    /// key already has one). Without it (and without --since) the tail is live from now on.
    #[arg(long)]
    resume: bool,
    /// Print only these types (comma-separated: cycle, originalTx, receipt).
    #[arg(long, value_delimiter = ',', value_parser = parse_type)]
    types: Vec<DataType>,
    /// Stop after printing this many records.
    #[arg(long)]
    count: Option<u64>,
    /// Ask for MessagePack binary frames instead of JSON text (the output is JSON either way).
    #[arg(long)]
    msgpack: bool,
}

fn parse_type(s: &str) -> Result<DataType, String> {
    DataType::from_name(s.trim())
        .or_else(|| {
            DataType::ALL
                .into_iter()
                .find(|t| t.log_name().eq_ignore_ascii_case(s.trim()))
        })
        .ok_or_else(|| format!("`{s}`: expected cycle, originalTx or receipt"))
}

/// A `--since` value: a cycle counter (every type from that cycle on) or a resume object.
fn parse_since(s: &str) -> anyhow::Result<Since> {
    let s = s.trim();
    if let Ok(cycle) = s.parse::<u64>() {
        // Before every receipt and original tx of `cycle` (timestamps and ids sort after
        // 0 and ""), and after the cycle before it.
        let start = firehose_client::core::since::PageKey {
            cycle,
            timestamp: 0,
            id: String::new(),
        };
        return Ok(Since {
            cycle: cycle.checked_sub(1),
            original_tx: Some(start.clone()),
            receipt: Some(start),
        });
    }
    serde_json::from_str(s).context("--since: expected a cycle counter or a resume object")
}

/// Runs until `--count` records are printed, stdout closes, or something is refused.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let distributor = args.keys.distributor()?;
    let mut urls = args.url.iter().map(|u| u.trim()).filter(|u| !u.is_empty());
    let first = urls.next().context("--url: no address")?;
    let mut cfg = ClientConfig::new(first, args.keys.identity()?, distributor);
    cfg.crypto = args.keys.crypto()?;
    cfg.since = args.since.as_deref().map(parse_since).transpose()?;
    // Live unless asked to resume: a tail run twice must not replay what the first printed.
    cfg.implicit_resume = args.resume;
    if args.msgpack {
        cfg.encoding = Encoding::MessagePack;
    }
    eprintln!(
        "firehose tail: subscribing to {first} as collector {}",
        cfg.keys.public_key()
    );
    let mut client = urls
        .fold(ResumingClient::new(cfg), |c, u| {
            c.with_fallback(u, distributor)
        })
        .stop_on_refusal();
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    while args.count.is_none_or(|n| printed < n) {
        let signed = client.next().await.map_err(|e| explain(e, &client))?;
        let record = &signed.record;
        if !args.types.is_empty() && !args.types.contains(&record.data_type()) {
            continue;
        }
        match writeln!(out, "{}", line(record)) {
            Ok(()) => printed += 1,
            // `| head`: the reader is done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e).context("writing to stdout"),
        }
    }
    out.flush().ok();
    client.close().await;
    Ok(())
}

/// `{"<type>": <entry as the archiver wrote it>}`.
fn line(record: &Record) -> String {
    format!(
        "{{\"{}\":{}}}",
        record.data_type().log_name(),
        record.to_canonical_json()
    )
}

/// Why the tail stops, in an operator's words.
fn explain(e: ClientError, client: &ResumingClient) -> anyhow::Error {
    use firehose_client::core::Error as CoreError;
    use firehose_client::tungstenite::Error as WsError;
    match e {
        ClientError::Ws(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let status = resp.status();
            // The body often just repeats the status's reason.
            let body = body.trim();
            let detail = match status.canonical_reason() {
                Some(r) if r.eq_ignore_ascii_case(body) => String::new(),
                _ if body.is_empty() => String::new(),
                _ => format!(": {body}"),
            };
            anyhow::anyhow!(
                "{} refused the subscription ({status}){detail}",
                client.url()
            )
        }
        ClientError::BadMessage(CoreError::BadSignature { owner }) => anyhow::anyhow!(
            "a message from {} is signed by {owner}, not by the distributor key (check --distributor-key)",
            client.url()
        ),
        ClientError::BadMessage(e) => {
            anyhow::anyhow!("a message from {} does not verify: {e}", client.url())
        }
        e => anyhow::anyhow!("{}: {e}", client.url()),
    }
}
