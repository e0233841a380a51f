//! A simulated MultiversX observer node: speaks the node side of the websocket outport
//! protocol (counter, WithAcknowledge, resend on ack timeout) and sends generated blocks.
//!
//! ```text
//! # connector listens, the node dials it (the node's default):
//! cargo run -p firehose-ws-connector -- --mode server --url 127.0.0.1:22111 &
//! cargo run --example observer_sim -- --mode client --url 127.0.0.1:22111 --blocks 20
//! # the node listens, the connector dials it:
//! cargo run --example observer_sim -- --mode server --url 127.0.0.1:22111 &
//! cargo run -p firehose-ws-connector -- --mode client --url 127.0.0.1:22111
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use firehose::sim::observer::{block_payload, HeaderKind, Observer};
use firehose::ws_connector::Marshaller;

/// Node-side simulator for firehose-ws-connector.
#[derive(Debug, Parser)]
struct Args {
    /// `client`: dial the connector's /save; `server`: listen and let the connector dial.
    #[arg(long, default_value = "client")]
    mode: String,
    /// Address to dial or listen on.
    #[arg(long, default_value = "127.0.0.1:22111")]
    url: String,
    /// Blocks to send (0 = until interrupted).
    #[arg(long, default_value_t = 100)]
    blocks: u64,
    /// Blocks per second (0 = as fast as acks allow).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Approximate size of each OutportBlock, bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Header type: header, v2 or meta.
    #[arg(long, default_value = "v2")]
    header: String,
    /// Shard id of the blocks (meta blocks use the metachain id).
    #[arg(long, default_value_t = 0)]
    shard: u32,
    /// Do not ask for acks (like a node with WithAcknowledge = false).
    #[arg(long)]
    no_ack: bool,
    /// Seconds to wait for an ack before resending.
    #[arg(long, default_value_t = 5)]
    ack_timeout: u64,
    /// Envelope encoding: `gogo protobuf` or `json`.
    #[arg(long, default_value = "gogo protobuf")]
    marshaller_type: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let kind = match args.header.as_str() {
        "header" => HeaderKind::Header,
        "v2" => HeaderKind::HeaderV2,
        "meta" => HeaderKind::MetaBlock,
        other => fail(&format!("--header `{other}`: expected header, v2 or meta")),
    };
    let marshaller = Marshaller::from_config(&args.marshaller_type)
        .unwrap_or_else(|| fail("--marshaller-type: expected `gogo protobuf` or `json`"));
    let shard = if kind == HeaderKind::MetaBlock {
        u32::MAX
    } else {
        args.shard
    };
    let host = args
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/save")
        .to_owned();

    let start = Instant::now();
    let mut bytes = 0u64;
    let mut nonce = 1u64;
    match args.mode.as_str() {
        "client" => loop {
            let url = format!("ws://{host}/save");
            let ws = match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((ws, _)) => ws,
                Err(e) => {
                    eprintln!("observer_sim: cannot reach {url}: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if run_connection(ws, marshaller, &args, kind, shard, &mut nonce, &mut bytes).await {
                break;
            }
        },
        "server" => {
            let listener = tokio::net::TcpListener::bind(&host)
                .await
                .unwrap_or_else(|e| fail(&format!("cannot listen on {host}: {e}")));
            eprintln!("observer_sim: waiting for the connector on ws://{host}/save");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    continue;
                };
                if run_connection(ws, marshaller, &args, kind, shard, &mut nonce, &mut bytes).await
                {
                    break;
                }
            }
        }
        other => fail(&format!("--mode `{other}`: expected client or server")),
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "observer_sim: sent {} blocks, {:.1} MB in {secs:.2} s ({:.0} blocks/s)",
        nonce - 1,
        bytes as f64 / 1e6,
        (nonce - 1) as f64 / secs
    );
}

/// Sends blocks on one connection (either side dialled); true when all were sent.
async fn run_connection<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    marshaller: Marshaller,
    args: &Args,
    kind: HeaderKind,
    shard: u32,
    nonce: &mut u64,
    bytes: &mut u64,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut o = Observer::new(ws, marshaller);
    o.ack_timeout = Duration::from_secs(args.ack_timeout);
    let done = send_all(&mut o, args, kind, shard, nonce, bytes).await;
    if done {
        o.close().await;
    }
    done
}

/// Sends blocks from `nonce` on; true when done, false if the connection failed (the block in
/// flight is sent again on the next connection, as a node does).
async fn send_all<S>(
    o: &mut Observer<S>,
    args: &Args,
    kind: HeaderKind,
    shard: u32,
    nonce: &mut u64,
    bytes: &mut u64,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    while args.blocks == 0 || *nonce <= args.blocks {
        let t = Instant::now();
        let payload = block_payload(kind, shard, *nonce, args.size);
        let len = payload.len() as u64;
        if let Err(e) = o.send_block(payload, !args.no_ack).await {
            eprintln!("observer_sim: block {nonce}: {e}");
            return false;
        }
        *bytes += len;
        *nonce += 1;
        if let Some(i) = interval {
            tokio::time::sleep(i.saturating_sub(t.elapsed())).await;
        }
    }
    true
}

fn fail(msg: &str) -> ! {
    eprintln!("observer_sim: {msg}");
    std::process::exit(2)
}
