//! What the connector suites share: captured and failing outputs, a server-mode connector on
//! an ephemeral port, a simulated observer, the original's vector.
#![allow(dead_code, unused_imports)]

pub use std::io::Write;
pub use std::sync::{mpsc as std_mpsc, Arc, Mutex};
pub use std::time::Duration;

pub use base64::Engine as _;
pub use bytes::Bytes;
pub use firehose_sim::observer::{block_payload, HeaderKind, Observer};
pub use firehose_ws_connector::codec::{decode_block, Marshaller};
pub use firehose_ws_connector::output::{FirehoseFormat, LegacyFormat, OutputFormat, Writer};
pub use firehose_ws_connector::{Config, Connector, Mode};
pub use tokio::net::{TcpListener, TcpStream};
pub use tokio::sync::oneshot;
pub use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const VECTOR_PAYLOAD: &str = "Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo";
pub const VECTOR_LINE: &str =
    "FIRE BLOCK 1 68617368 0 707265762068617368 0 100 Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo";
pub const INIT: &str = "FIRE INIT 1.0 type.googleapis.com/proto.OutportBlock";

/// Output captured in memory; each write is recorded separately.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

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
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// An output that waits for permission before each write.
pub struct Gated {
    pub inner: Capture,
    pub permits: std_mpsc::Receiver<()>,
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
pub struct Flaky {
    pub inner: Capture,
    pub fail: usize,
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

pub struct Running {
    pub addr: std::net::SocketAddr,
    pub connector: Arc<Connector>,
    pub stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn server_config() -> Config {
    Config {
        mode: Mode::Server,
        url: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

/// Starts a server-mode connector on an ephemeral port writing to `out`.
pub async fn start_server<W: Write + Send + 'static>(
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

pub async fn observer(
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

pub fn firehose() -> Arc<dyn OutputFormat> {
    Arc::new(FirehoseFormat::default())
}

pub async fn wait_for_lines(out: &Capture, n: usize) -> Vec<String> {
    for _ in 0..500 {
        let lines = out.lines();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} lines, got {}", out.lines().len());
}
