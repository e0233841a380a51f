//! The server-mode connector under hostile or careless peers: slow handshakes are dropped,
//! connections beyond the cap wait, a peer that goes away while its block waits for a
//! blocked output is noticed at once (no ack), whatever it pipelined, what peers make the
//! connector hold stays within the memory budget, and an oversized message gets 1009.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use firehose_sim::observer::{block_payload, HeaderKind, Observer};
use firehose_ws_connector::codec::Marshaller;
use firehose_ws_connector::output::{FirehoseFormat, OutputFormat, Writer};
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
    // A budget for two largest messages and their lines: two connections at once.
    let cfg = server(|c| {
        c.max_message_size = 1 << 20;
        c.message_budget = 5 << 20;
    });
    let (addr, connector, _stop) = start(cfg, std::io::sink()).await;
    assert_eq!(connector.connection_cap(), 2);
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

/// Waits up to 5 s for `cond`.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// 16 observers each pipeline two blocks while the output is blocked, then leave: every one
/// is noticed (before: none were, and their slots stayed held), and what their lines hold
/// stays counted until the output takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departures_are_noticed_whatever_was_pipelined() {
    let (gate, permits) = std_mpsc::channel();
    let cfg = server(|c| {
        c.max_message_size = 1 << 20;
        c.message_budget = 64 << 20;
    });
    let (addr, connector, _stop) = start(cfg, Gated(permits)).await;
    assert!(connector.connection_cap() >= 16);
    for nonce in 0..16 {
        let mut o = observer(addr).await;
        for k in 0..2 {
            let payload = block_payload(HeaderKind::Header, 0, nonce * 2 + k, 300_000);
            o.send_block(payload, false).await.unwrap();
        }
        o.close().await;
    }
    let stats = connector.stats().clone();
    assert!(
        eventually(|| stats.abandoned.load(Relaxed) == 16).await,
        "{} of 16 departures noticed",
        stats.abandoned.load(Relaxed)
    );
    assert_eq!(stats.acks_sent.load(Relaxed), 0);
    let budget = connector.budget().clone();
    assert!(
        budget.reserved_bytes() > 0,
        "lines waiting for the output are counted"
    );
    assert!(budget.reserved_bytes() <= budget.total_bytes());
    // The output goes away: the waiting lines are dropped and their memory given back (what
    // stays is the room the accept loop keeps for the next connection).
    drop(gate);
    let next = connector.reservation().div_ceil(1024) * 1024;
    assert!(eventually(|| budget.reserved_bytes() <= next).await);
}

/// Two observers fill the budget with blocks that wait on a blocked output and leave: a third
/// is not served until the output takes their lines (before: the budget counted one message
/// a connection, and 16 observers reached 3.1 times it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_departed_observers_left_behind_stays_within_the_budget() {
    let (gate, permits) = std_mpsc::channel();
    let cfg = server(|c| {
        c.max_message_size = 1 << 20;
        c.message_budget = 5 << 20;
    });
    let (addr, connector, _stop) = start(cfg, Gated(permits)).await;
    assert_eq!(connector.connection_cap(), 2);
    let budget = connector.budget().clone();
    for nonce in 0..2 {
        let mut o = observer(addr).await;
        o.send_block(block_payload(HeaderKind::Header, 0, nonce, 900_000), false)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        o.close().await;
    }
    let stats = connector.stats().clone();
    assert!(eventually(|| stats.abandoned.load(Relaxed) == 2).await);
    // Both reservations stay held (the accept loop waits for room for a third).
    assert!(budget.reserved_bytes() >= 2 * connector.reservation());
    assert!(budget.reserved_bytes() <= budget.total_bytes());
    let third = tokio::spawn(async move { observer(addr).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "no room in the budget while their lines wait"
    );
    // One block written: its room goes back and the third is served.
    gate.send(()).unwrap();
    let mut third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once the output took a block")
        .unwrap();
    gate.send(()).unwrap();
    gate.send(()).unwrap();
    third
        .send_block(block_payload(HeaderKind::Header, 0, 9, 100), true)
        .await
        .unwrap();
}

/// A message over the largest size: the peer gets close code 1009 (before: 1006).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_with_1009() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let cfg = server(|c| {
        c.max_message_size = 1 << 20;
        c.max_frame_size = 1 << 20;
    });
    let (addr, connector, _stop) = start(cfg, std::io::sink()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/save"))
        .await
        .unwrap();
    let _ = ws.send(Message::Binary(vec![7u8; 8 << 20].into())).await;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => break u16::from(f.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1009);
    assert_eq!(connector.stats().too_big.load(Relaxed), 1);
    // The connector serves the next observer.
    let mut o = observer(addr).await;
    o.send_block(block_payload(HeaderKind::Header, 0, 1, 100), true)
        .await
        .unwrap();
}
