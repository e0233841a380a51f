//! End to end over real loopback websockets: the connector against simulated observer nodes.

use std::io::Write;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use firehose_ws_connector::codec::{decode_block, Marshaller};
use firehose_ws_connector::output::{FirehoseFormat, LegacyFormat, OutputFormat, Writer};
use firehose_ws_connector::sim::{block_payload, HeaderKind, Observer};
use firehose_ws_connector::{Config, Connector, Mode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const VECTOR_PAYLOAD: &str = "Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo";
const VECTOR_LINE: &str =
    "FIRE BLOCK 1 68617368 0 707265762068617368 0 100 Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo";
const INIT: &str = "FIRE INIT 1.0 type.googleapis.com/proto.OutportBlock";

/// Output captured in memory; each write is recorded separately.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// An output that waits for permission before each write.
struct Gated {
    inner: Capture,
    permits: std_mpsc::Receiver<()>,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.permits
            .recv()
            .map_err(|_| std::io::Error::other("gate closed"))?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An output whose first `fail` block writes fail.
struct Flaky {
    inner: Capture,
    fail: usize,
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.fail > 0 && buf.starts_with(b"FIRE BLOCK ") {
            self.fail -= 1;
            return Err(std::io::Error::other("disk full"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Running {
    addr: std::net::SocketAddr,
    connector: Arc<Connector>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn server_config() -> Config {
    Config {
        mode: Mode::Server,
        url: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

/// Starts a server-mode connector on an ephemeral port writing to `out`.
async fn start_server<W: Write + Send + 'static>(
    cfg: Config,
    format: Arc<dyn OutputFormat>,
    out: W,
) -> Running {
    let mut init = Vec::new();
    format.init(&mut init);
    let (writer, _thread) = Writer::spawn(out, init).unwrap();
    let connector = Connector::new(cfg, format, writer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let c = connector.clone();
    tokio::spawn(async move {
        c.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        connector,
        stop: Some(stop),
    }
}

async fn observer(
    addr: std::net::SocketAddr,
    m: Marshaller,
) -> Observer<MaybeTlsStream<TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/save"))
        .await
        .unwrap();
    let mut o = Observer::new(ws, m);
    o.ack_timeout = Duration::from_secs(10);
    o
}

fn firehose() -> Arc<dyn OutputFormat> {
    Arc::new(FirehoseFormat::default())
}

async fn wait_for_lines(out: &Capture, n: usize) -> Vec<String> {
    for _ in 0..500 {
        let lines = out.lines();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} lines, got {}", out.lines().len());
}

#[tokio::test]
async fn reproduces_the_originals_vector_line() {
    let out = Capture::default();
    let run = start_server(server_config(), firehose(), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    o.send_block(payload.into(), true).await.unwrap();
    assert_eq!(out.lines(), vec![INIT.to_owned(), VECTOR_LINE.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_observers_never_interleave() {
    let out = Capture::default();
    let run = start_server(server_config(), firehose(), out.clone()).await;
    let mut tasks = Vec::new();
    for shard in 0..4u32 {
        let addr = run.addr;
        tasks.push(tokio::spawn(async move {
            let mut o = observer(addr, Marshaller::Protobuf).await;
            for nonce in 1..=40 {
                let p = block_payload(HeaderKind::HeaderV2, shard, nonce, 64 * 1024);
                o.send_block(p, true).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let lines = out.lines();
    assert_eq!(lines.len(), 1 + 160);
    let mut per_shard: Vec<Vec<u64>> = vec![Vec::new(); 4];
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 9, "a whole line: {}", &line[..80]);
        assert_eq!(&f[..2], &["FIRE", "BLOCK"]);
        let payload = base64::engine::general_purpose::STANDARD
            .decode(f[8])
            .unwrap();
        let info = decode_block(&payload).unwrap();
        assert_eq!(f[2], info.nonce.to_string());
        per_shard[info.shard as usize].push(info.nonce);
    }
    for nonces in per_shard {
        assert_eq!(nonces, (1..=40).collect::<Vec<_>>());
    }
    assert_eq!(
        run.connector
            .stats()
            .acks_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        160
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_only_after_the_line_is_written() {
    let out = Capture::default();
    let (permit, permits) = std_mpsc::channel();
    permit.send(()).unwrap(); // the INIT line, written at start-up
    let run = start_server(
        server_config(),
        firehose(),
        Gated {
            inner: out.clone(),
            permits,
        },
    )
    .await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(300);
    o.max_resends = 0;
    let p = block_payload(HeaderKind::Header, 0, 7, 1024);
    o.send_block(p, false).await.unwrap(); // sent with WithAcknowledge=false: no ack expected
    permit.send(()).unwrap();
    wait_for_lines(&out, 2).await;
    // Now with an ack: the write is held at the gate, so no ack may come.
    let msg = Marshaller::Protobuf.encode(&firehose_ws_connector::proto::WsMessage {
        with_acknowledge: true,
        counter: 2,
        r#type: 2,
        payload: block_payload(HeaderKind::Header, 0, 8, 1024),
        topic: "SaveBlock".into(),
        version: 1,
    });
    o.send_raw(msg).await.unwrap();
    assert!(!o.wait_ack(2).await.unwrap(), "acked before the write");
    assert_eq!(out.lines().len(), 2);
    permit.send(()).unwrap();
    o.ack_timeout = Duration::from_secs(10);
    assert!(o.wait_ack(2).await.unwrap(), "ack after the write");
    assert_eq!(out.lines().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_is_not_acked_and_the_resend_is_printed_once() {
    let out = Capture::default();
    let run = start_server(
        server_config(),
        firehose(),
        Flaky {
            inner: out.clone(),
            fail: 1,
        },
    )
    .await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(500);
    o.send_block(block_payload(HeaderKind::Header, 1, 5, 2048), true)
        .await
        .unwrap();
    assert_eq!(o.resends, 1, "the first attempt was not acked");
    o.send_block(block_payload(HeaderKind::Header, 1, 6, 2048), true)
        .await
        .unwrap();
    let lines = out.lines();
    let blocks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("FIRE BLOCK "))
        .collect();
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].starts_with("FIRE BLOCK 5 "));
    assert!(blocks[1].starts_with("FIRE BLOCK 6 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dropped_and_the_connection_lives_on() {
    let out = Capture::default();
    let cfg = Config {
        max_message_size: 1 << 20,
        max_frame_size: 1 << 20,
        ..server_config()
    };
    let run = start_server(cfg, firehose(), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(300);
    o.max_resends = 0;
    // Garbage that is not a WsMessage.
    o.send_raw(vec![0xff, 0xff, 0xff, 0x0f, 0x01])
        .await
        .unwrap();
    o.send_raw(Vec::new()).await.unwrap();
    // A SaveBlock whose payload is truncated protobuf: not acked (blocking ack on error).
    let mut bad = block_payload(HeaderKind::Header, 0, 1, 500).to_vec();
    bad.truncate(bad.len() / 2);
    assert!(o.send_block(bad.into(), true).await.is_err());
    // An unknown header type: not acked.
    let unknown = firehose_ws_connector::proto::BlockData {
        header_type: "HeaderV9".into(),
        header_bytes: Bytes::from_static(b"\x08\x01"),
        ..Default::default()
    };
    let mut block = Vec::new();
    prost::Message::encode(
        &firehose_ws_connector::proto::OutportBlock {
            shard_id: 0,
            block_data: Some(unknown),
            highest_final_block_nonce: 0,
        },
        &mut block,
    )
    .unwrap();
    assert!(o.send_block(block.into(), true).await.is_err());
    // An unhandled topic is acked.
    o.ack_timeout = Duration::from_secs(10);
    o.send("SaveRoundsInfo", Bytes::from_static(b"\x08\x01"), true)
        .await
        .unwrap();
    // The same connection still prints the next good block.
    o.send_block(block_payload(HeaderKind::MetaBlock, u32::MAX, 2, 500), true)
        .await
        .unwrap();
    let lines = out.lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("FIRE BLOCK 2 "));

    // An oversize message ends that connection (the frame cannot be read), not the connector.
    let mut big = observer(run.addr, Marshaller::Protobuf).await;
    big.ack_timeout = Duration::from_millis(500);
    big.max_resends = 0;
    let _ = big
        .send_block(block_payload(HeaderKind::Header, 0, 3, 2 << 20), true)
        .await;
    let mut again = observer(run.addr, Marshaller::Protobuf).await;
    again
        .send_block(block_payload(HeaderKind::Header, 0, 4, 1000), true)
        .await
        .unwrap();
    assert!(out.lines().last().unwrap().starts_with("FIRE BLOCK 4 "));
    let stats = run.connector.stats();
    assert!(
        stats
            .bad_messages
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    assert_eq!(
        stats
            .failed_blocks
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn only_the_save_route_is_served() {
    let run = start_server(server_config(), firehose(), Capture::default()).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/other", run.addr))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn json_envelope_and_legacy_format() {
    let out = Capture::default();
    let cfg = Config {
        marshaller: Marshaller::Json,
        ..server_config()
    };
    let run = start_server(cfg, Arc::new(LegacyFormat::default()), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Json).await;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    o.send_block(payload.clone().into(), true).await.unwrap();
    assert_eq!(
        out.lines(),
        vec![
            "FIRE BLOCK_BEGIN 1".to_owned(),
            format!(
                "FIRE BLOCK_END 1 707265762068617368 100 {}",
                hex::encode(&payload)
            ),
        ]
    );
}

/// A node in server mode: accepts the connector on /save and hands out observers.
async fn node_server(listener: TcpListener) -> Observer<TcpStream> {
    let (stream, _) = listener.accept().await.unwrap();
    let ws: WebSocketStream<TcpStream> = tokio_tungstenite::accept_async(stream).await.unwrap();
    let mut o = Observer::new(ws, Marshaller::Protobuf);
    o.ack_timeout = Duration::from_secs(10);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_reconnects_after_the_node_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let out = Capture::default();
    let cfg = Config {
        mode: Mode::Client,
        url: addr.to_string(),
        retry_duration: Duration::from_millis(100),
        ..Config::default()
    };
    let mut init = Vec::new();
    firehose().init(&mut init);
    let (writer, _t) = Writer::spawn(out.clone(), init).unwrap();
    let connector = Connector::new(cfg, firehose(), writer);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(connector.clone().dial(async {
        let _ = stopped.await;
    }));

    let mut node = node_server(listener).await;
    for nonce in 1..=3 {
        node.send_block(block_payload(HeaderKind::Header, 0, nonce, 1000), true)
            .await
            .unwrap();
    }
    // The node goes away (connection and listener), then comes back on the same port.
    node.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut node = node_server(listener).await;
    for nonce in 4..=6 {
        node.send_block(block_payload(HeaderKind::Header, 0, nonce, 1000), true)
            .await
            .unwrap();
    }
    let lines = out.lines();
    let nonces: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(nonces, vec!["1", "2", "3", "4", "5", "6"]);
    assert!(
        connector
            .stats()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn timestamp_nanos_flag() {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    let info = decode_block(&payload).unwrap();
    let mut line = Vec::new();
    FirehoseFormat {
        timestamp_nanos: true,
    }
    .block(&info, &payload, &mut line);
    assert!(String::from_utf8(line)
        .unwrap()
        .contains(" 0 100000000000 "));
}
