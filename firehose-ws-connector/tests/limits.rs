//! The server-mode connector under hostile or careless peers: slow handshakes are dropped,
//! connections beyond the cap wait, and a peer that goes away while its block waits for a
//! blocked output is noticed at once (no ack, nothing kept for it).

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use firehose_ws_connector::codec::Marshaller;
use firehose_ws_connector::output::{FirehoseFormat, OutputFormat, Writer};
use firehose_ws_connector::sim::{block_payload, HeaderKind, Observer};
use firehose_ws_connector::{Config, Connector, Mode};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An output whose writes wait for a permit (a blocked stdout).
struct Gated(std_mpsc::Receiver<()>);

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .recv()
            .map_err(|_| std::io::Error::other("gate closed"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server-mode connector on an ephemeral port; dropping the sender stops it.
async fn start(
    cfg: Config,
    out: impl Write + Send + 'static,
) -> (std::net::SocketAddr, Arc<Connector>, oneshot::Sender<()>) {
    let format: Arc<dyn OutputFormat> = Arc::new(FirehoseFormat::default());
    let (writer, _thread) = Writer::spawn(out, Vec::new()).unwrap();
    let connector = Connector::new(cfg, format, writer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let c = connector.clone();
    tokio::spawn(async move {
        let _ = c
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    (addr, connector, stop)
}

fn server(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config {
        mode: Mode::Server,
        url: "127.0.0.1:0".into(),
        ..Config::default()
    };
    tweak(&mut cfg);
    cfg
}

async fn observer(
    addr: std::net::SocketAddr,
) -> Observer<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/save"))
        .await
        .unwrap();
    Observer::new(ws, Marshaller::Protobuf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_dropped_after_the_handshake_timeout() {
    let cfg = server(|c| c.handshake_timeout = Duration::from_millis(300));
    let (addr, connector, _stop) = start(cfg, std::io::sink()).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed by the connector")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(connector.stats().handshake_timeouts.load(Relaxed), 1);
    // A real observer is still served.
    let mut o = observer(addr).await;
    o.send_block(block_payload(HeaderKind::Header, 0, 1, 100), true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_leaves() {
    // A budget for two largest messages: two connections at once.
    let cfg = server(|c| {
        c.max_message_size = 1 << 20;
        c.message_budget = 2 << 20;
    });
    assert_eq!(cfg.connection_cap(), 2);
    let (addr, _connector, _stop) = start(cfg, std::io::sink()).await;
    let first = observer(addr).await;
    let mut second = observer(addr).await;
    second
        .send_block(block_payload(HeaderKind::Header, 0, 1, 100), true)
        .await
        .unwrap();
    let third = tokio::spawn(async move { observer(addr).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third is not served while two are");
    first.close().await;
    let mut third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot is free")
        .unwrap();
    third
        .send_block(block_payload(HeaderKind::Header, 0, 2, 100), true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_leave_while_the_output_is_blocked_are_noticed() {
    let (gate, permits) = std_mpsc::channel();
    let (addr, connector, _stop) = start(server(|_| {}), Gated(permits)).await;
    let mut waiting = Vec::new();
    for nonce in 0..5 {
        let mut o = observer(addr).await;
        o.max_resends = 0;
        o.ack_timeout = Duration::from_millis(300);
        let r = o
            .send_block(block_payload(HeaderKind::Header, 0, nonce, 100_000), true)
            .await;
        assert!(r.is_err(), "no ack while the output is blocked");
        waiting.push(o);
    }
    // They hang up without their acks.
    for o in waiting {
        o.close().await;
    }
    let mut abandoned = 0;
    for _ in 0..500 {
        abandoned = connector.stats().abandoned.load(Relaxed);
        if abandoned == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        abandoned, 5,
        "every peer that left is noticed while the output is blocked"
    );
    assert_eq!(connector.stats().acks_sent.load(Relaxed), 0);
    drop(gate);
}
