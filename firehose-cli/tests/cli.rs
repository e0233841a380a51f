//! `firehose` against the demo distributor (`firehose-distributor demo`, a real process on
//! loopback): keygen, tail and history, including a refused key, a wrong distributor key and
//! a reply tampered with on the way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIREHOSE: &str = env!("CARGO_BIN_EXE_firehose");

/// The distributor binary beside ours (built by `cargo test --workspace`; built here when
/// only this crate's tests run).
fn distributor_bin() -> PathBuf {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A demo distributor, killed when dropped.
struct Demo {
    child: Child,
    port: u16,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// `firehose-distributor demo` with the allow-list on and `subscriber` on it.
    fn start(dir: &Path, subscriber: &str) -> Demo {
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

    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Runs `firehose ARGS`, at most 60 s (its output read as it comes).
fn firehose(args: &[&str]) -> Output {
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

fn stdout_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}`: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `firehose keygen --out`: the file's public key, and that the file is private.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
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

#[test]
fn keygen_never_overwrites_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = keygen(dir.path(), "k.json");
    let before = std::fs::read(&path).unwrap();
    let out = firehose(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("never overwritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn tail_prints_verified_records_and_stops_on_refusal_or_a_foreign_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "listed.json");
    let (unlisted, _) = keygen(dir.path(), "unlisted.json");
    let demo = Demo::start(dir.path(), &public);
    let key = key.to_str().unwrap();
    let ws = demo.ws();

    // From cycle 3 on, cycles only: consecutive counters.
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        key,
        "--since",
        "3",
        "--types",
        "cycle",
        "--count",
        "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counters: Vec<u64> = stdout_lines(&out)
        .iter()
        .map(|l| l["cycle"]["counter"].as_u64().expect("a cycle line"))
        .collect();
    assert_eq!(counters, [4, 5, 6, 7, 8]);

    // Receipts, in MessagePack frames, with a dead distributor first to fail over from.
    let dead = format!("ws://127.0.0.1:{}", free_port());
    let urls = format!("{dead},{ws}");
    let out = firehose(&[
        "tail",
        "--url",
        &urls,
        "--key-file",
        key,
        "--since",
        "0",
        "--types",
        "receipt",
        "--count",
        "3",
        "--msgpack",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines.iter().all(|l| l["receipt"]["receiptId"].is_string()),
        "{lines:?}"
    );

    // A key that is not on the allow-list: refused, with the reason.
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        unlisted.to_str().unwrap(),
        "--count",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("refused the subscription") && err.contains("401"),
        "{err}"
    );

    // Messages signed by another key than the one we trust.
    let other = "ab".repeat(32);
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        key,
        "--since",
        "0",
        "--count",
        "1",
        "--distributor-key",
        &other,
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("not by the distributor key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_verifies_replies_and_pages_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "listed.json");
    let (unlisted, _) = keygen(dir.path(), "unlisted.json");
    let demo = Demo::start(dir.path(), &public);
    let key = key.to_str().unwrap();
    let http = demo.http();

    // The simulated archiver writes 20 receipts a cycle: wait for 300.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = firehose(&["history", "/totalData", "--url", &http, "--key-file", key]);
        assert!(out.status.success(), "{}", stderr(&out));
        let totals: Value = serde_json::from_slice(&out.stdout).unwrap();
        if totals["totalReceipts"].as_u64().unwrap() >= 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo wrote too few receipts: {totals}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 250 receipts by row offset: three requests (101 + 101 + 48 rows), in order.
    let out = firehose(&[
        "history",
        "receipt",
        r#"{"start": 0, "end": 249}"#,
        "--all",
        "--url",
        &http,
        "--key-file",
        key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = stdout_lines(&out);
    assert_eq!(rows.len(), 250);
    let ids: std::collections::HashSet<_> = rows
        .iter()
        .map(|r| r["receiptId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 250, "no row twice");
    let order: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["cycle"].as_u64().unwrap(),
                r["timestamp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "rows in (cycle, timestamp) order"
    );

    // Every cycle up to the newest: consecutive counters from 0.
    let out = firehose(&[
        "history",
        "/cycleinfo",
        "--all",
        "--url",
        &http,
        "--key-file",
        key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counters: Vec<u64> = stdout_lines(&out)
        .iter()
        .map(|c| c["counter"].as_u64().unwrap())
        .collect();
    assert!(counters.len() > 1);
    assert_eq!(counters, (0..counters.len() as u64).collect::<Vec<_>>());

    // A refused request says why.
    let out = firehose(&[
        "history",
        "/totalData",
        "--url",
        &http,
        "--key-file",
        unlisted.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));

    // A reply changed on the way (one digit of `pid`) does not verify, and is not printed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(tamper_proxy(demo.port));
    let via_proxy = format!("http://{proxy}");
    let out = firehose(&[
        "history",
        "/totalData",
        "--url",
        &via_proxy,
        "--key-file",
        key,
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
}

/// An HTTP proxy to `upstream` that changes one digit of each reply's `"pid":` (same length).
async fn tamper_proxy(upstream: u16) -> std::net::SocketAddr {
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/1.1 message (head and a `content-length` body), or `None` at the end.
async fn read_message(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
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
