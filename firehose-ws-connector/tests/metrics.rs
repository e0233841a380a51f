//! `--metrics-addr` on the binary: what an observer did shows in the scrape (blocks received,
//! written and acked, bytes, newest block per shard, refusals), and stdout is byte for byte
//! what it is without metrics.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firehose_sim::observer::{block_payload, HeaderKind};

mod support;

use support::{connect, free_port, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The same observer session: ten acked blocks of shard 1, a garbage envelope, one more
/// block, then (on a second connection) a message over the 1 MiB limit.
async fn observe(port: u16) {
    let mut o = connect(port).await;
    for nonce in 1..=10 {
        let payload = block_payload(HeaderKind::Header, 1, nonce, 2000);
        o.send_block(payload, true).await.unwrap();
    }
    o.send_raw(vec![0xff; 7]).await.unwrap();
    let payload = block_payload(HeaderKind::Header, 1, 11, 2000);
    o.send_block(payload, true).await.unwrap();
    o.close().await;
    let mut big = connect(port).await;
    let _ = big.send_raw(vec![0u8; 2 << 20]).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), big.wait_ack(0)).await;
}

/// `GET path` over HTTP/1.0: (status line, body).
async fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in\n{scrape}"))
        .parse()
        .unwrap()
}

fn stop(mut child: Child) -> Vec<u8> {
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap()
}

#[tokio::test]
async fn the_scrape_shows_what_observers_did_and_stdout_is_unchanged() {
    let (port, metrics_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{metrics_port}");
    let child = spawn(
        port,
        &["--max-message-mib", "1", "--metrics-addr", &addr],
        Stdio::null(),
    );
    observe(port).await;
    // The connections' ends are counted once the connector has seen them.
    let mut scrape = String::new();
    for _ in 0..200 {
        let (status, text) = get(&addr, "/metrics").await;
        assert!(status.contains("200"), "{status}");
        scrape = text;
        if value(&scrape, "firehose_connector_peers") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, _) = get(&addr, "/other").await;
    assert!(status.contains("404"), "{status}");
    let with_metrics = stop(child);

    let peer = r#"{peer="127.0.0.1",topic="SaveBlock"}"#;
    assert_eq!(
        value(
            &scrape,
            &format!("firehose_connector_blocks_received_total{peer}")
        ),
        11.0
    );
    assert_eq!(
        value(
            &scrape,
            &format!("firehose_connector_blocks_written_total{peer}")
        ),
        11.0
    );
    assert_eq!(
        value(
            &scrape,
            &format!("firehose_connector_blocks_acked_total{peer}")
        ),
        11.0
    );
    assert_eq!(
        value(&scrape, "firehose_connector_write_to_ack_seconds_count"),
        11.0
    );
    assert_eq!(
        value(&scrape, r#"firehose_connector_last_block_nonce{shard="1"}"#),
        11.0
    );
    assert!(
        value(
            &scrape,
            r#"firehose_connector_last_block_timestamp_seconds{shard="1"}"#
        ) > 0.0
    );
    let reason = |r: &str| {
        value(
            &scrape,
            &format!("firehose_connector_frames_refused_total{{reason=\"{r}\"}}"),
        )
    };
    assert_eq!(reason("undecodable"), 1.0);
    assert_eq!(reason("too_big"), 1.0);
    assert_eq!(value(&scrape, "firehose_connector_peers"), 0.0);
    // Every byte after the INIT line is a block's line.
    let init = with_metrics.iter().position(|b| *b == b'\n').unwrap() + 1;
    let blocks_bytes = (with_metrics.len() - init) as f64;
    assert_eq!(
        value(&scrape, "firehose_connector_bytes_written_total"),
        blocks_bytes
    );

    // The same session without --metrics-addr prints the same bytes.
    let port = free_port();
    let child = spawn(port, &["--max-message-mib", "1"], Stdio::null());
    observe(port).await;
    let without = stop(child);
    assert_eq!(
        without, with_metrics,
        "stdout does not depend on --metrics-addr"
    );
    assert_eq!(String::from_utf8_lossy(&without).lines().count(), 12);
}

#[test]
fn a_metrics_address_in_use_refuses_to_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .args([
            "--mode",
            "server",
            "--url",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--metrics-addr", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-addr") && err.contains(&addr),
        "{err}"
    );
}
