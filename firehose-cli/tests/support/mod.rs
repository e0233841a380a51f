//! What the `firehose` suites share: the demo distributor as a process, running `firehose`,
//! key files, and an HTTP proxy that tampers with replies.
#![allow(dead_code, unused_imports)]

pub use std::path::{Path, PathBuf};
pub use std::process::{Child, Command, Output, Stdio};
pub use std::time::{Duration, Instant};

pub use serde_json::{json, Value};
pub use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const FIREHOSE: &str = env!("CARGO_BIN_EXE_firehose");

/// The distributor binary beside ours (built by `cargo test --workspace`; built here when
/// only this crate's tests run).
pub fn distributor_bin() -> PathBuf {
    let bin = Path::new(FIREHOSE).with_file_name("firehose-distributor");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "firehose-distributor",
                "--bin",
                "firehose-distributor",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build firehose-distributor");
    }
    bin
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A demo distributor, killed when dropped.
pub struct Demo {
    child: Child,
    pub port: u16,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// `firehose-distributor demo` with the allow-list on and `subscriber` on it.
    pub fn start(dir: &Path, subscriber: &str) -> Demo {
        let port = free_port();
        let config = dir.join("distributor-config.json");
        let cfg = json!({
            "limitToSubscribersOnly": true,
            "subscribers": [{"publicKey": subscriber, "expirationTimestamp": 0, "subscriptionType": "FIREHOSE"}],
        });
        std::fs::write(&config, cfg.to_string()).unwrap();
        let child = Command::new(distributor_bin())
            .args(["demo", "--cycle-seconds", "0.05", "--log-level", "warn"])
            .args(["--port", &port.to_string(), "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let demo = Demo { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the demo distributor did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        demo
    }

    pub fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Runs `firehose ARGS`, at most 60 s (its output read as it comes).
pub fn firehose(args: &[&str]) -> Output {
    let child = Command::new(FIREHOSE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("firehose {args:?} did not finish");
        }
    }
}

pub fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}`: {e}")))
        .collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `firehose keygen --out`: the file's public key, and that the file is private.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = firehose(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entry: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry["subscriptionType"], "FIREHOSE");
    assert_eq!(entry["expirationTimestamp"], 0);
    let pair: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(pair["publicKey"], entry["publicKey"]);
    assert_eq!(pair["secretKey"].as_str().unwrap().len(), 128);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "a key file is readable by its owner only"
    );
    (path, entry["publicKey"].as_str().unwrap().to_owned())
}

/// An HTTP proxy to `upstream` that changes one digit of each reply's `"pid":` (same length).
pub async fn tamper_proxy(upstream: u16) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .unwrap();
                while let Some(request) = read_message(&mut client).await {
                    server.write_all(&request).await.unwrap();
                    let Some(mut reply) = read_message(&mut server).await else {
                        return;
                    };
                    if let Some(at) = find(&reply, b"\"pid\":") {
                        let digit = &mut reply[at + 6];
                        *digit = if *digit == b'1' { b'2' } else { b'1' };
                    }
                    client.write_all(&reply).await.unwrap();
                }
            });
        }
    });
    addr
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.1 message (head and a `content-length` body), or `None` at the end.
pub async fn read_message(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}
