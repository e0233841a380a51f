//! Bursts that used to park hundreds of MB in the distributor: 1000 parallel 1 MiB request
//! bodies, and 1000 request heads of 390 KB that never end. The process's peak resident
//! memory (`VmHWM`) must stay far below what the burst sends.

use firehose_testkit as common;

use std::process::{Command, Stdio};
use std::time::Duration;

use firehose_dbstore::fixture::FixtureSpec;
use firehose_sim::ArchiverSim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `VmHWM` (peak resident memory) of `pid`, in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

/// Sends `head` then `body` on a fresh connection and reads until the server closes or
/// answers; the status line's code (0 if none).
async fn send(addr: String, head: std::sync::Arc<Vec<u8>>, body: std::sync::Arc<Vec<u8>>) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
        return 0;
    };
    if s.write_all(&head).await.is_err() || s.write_all(&body).await.is_err() {
        return 0;
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_bodies_and_heads_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ArchiverSim::create(dir.path(), FixtureSpec::default(), 100).unwrap();
    let port = common::process::free_port();
    let cfg = dir.path().join("distributor-config.json");
    let file = serde_json::json!({"DISTRIBUTOR_PORT": port, "DATA_LOG_DIR": sim.log_dir()});
    std::fs::write(&cfg, file.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--config", cfg.to_str().unwrap(), "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let start = peak_mib(child.id());

    // 1000 request bodies of 1 MiB at once.
    let body = std::sync::Arc::new(vec![b' '; 1 << 20]);
    let head = std::sync::Arc::new(
        format!(
            "POST /totalData HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            1 << 20
        )
        .into_bytes(),
    );
    let burst: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(send(addr.clone(), head.clone(), body.clone())))
        .collect();
    let mut answered = 0;
    for b in burst {
        answered += usize::from(b.await.unwrap() != 0);
    }
    assert!(answered >= 900, "{answered} of 1000 answered");
    let after_bodies = peak_mib(child.id());

    // 1000 heads of 390 KB that never end.
    let long_head = std::sync::Arc::new(
        format!(
            "GET /is-alive HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
            "a".repeat(390_000)
        )
        .into_bytes(),
    );
    let nothing = std::sync::Arc::new(Vec::new());
    let burst: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(send(addr.clone(), long_head.clone(), nothing.clone())))
        .collect();
    for b in burst {
        b.await.unwrap();
    }
    let after_heads = peak_mib(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    eprintln!("peak RSS: start {start} MiB, after 1000 x 1 MiB bodies {after_bodies} MiB, after 1000 x 390 KB heads {after_heads} MiB");
    assert!(
        after_bodies - start < 200,
        "1000 x 1 MiB bodies raised the peak by {} MiB",
        after_bodies - start
    );
    assert!(
        after_heads - after_bodies < 100,
        "1000 x 390 KB heads raised the peak by {} MiB",
        after_heads - after_bodies
    );
}
