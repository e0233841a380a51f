//! The deploy files stay true to the servers: every metric that the alert rules
//! (`deploy/prometheus/firehose-alerts.yml`), the Grafana dashboard
//! (`deploy/grafana/firehose.json`) and the README name is exposed by a running distributor
//! (websocket and MQ mode) or a running ws-connector, so a rename cannot silently blind an
//! alert.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firehose_sim::observer::{block_payload, HeaderKind, Observer};
use firehose_testkit::process::{free_port, Proc};
use firehose_ws_connector::Marshaller;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A workspace binary (built by `cargo test --workspace`; built here when missing).
fn binary(package: &str) -> PathBuf {
    let dir = std::env::current_exe().unwrap();
    let bin = dir.parent().unwrap().parent().unwrap().join(package);
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", package])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build {package}");
    }
    bin
}

fn start(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    Proc(
        Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `GET /metrics` as Prometheus asks for it, retried until the server answers.
async fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let req = "GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1\r\n\r\n";
            s.write_all(req.as_bytes()).await.unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).await.unwrap();
            if let Some((_, body)) = reply.split_once("\r\n\r\n") {
                return body.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing answers /metrics on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The names of the samples in an exposition (`x_bucket`, `x_sum`, `x_total` as written).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// One sample's value (`name{labels}` as written).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}`"))
        .parse()
        .unwrap()
}

/// The `firehose_*` metric names a deploy file uses.
fn used_names(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("firehose_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exposed() {
    let dir = tempfile::tempdir().unwrap();
    let distributor = binary("firehose-distributor");
    let connector = binary("firehose-ws-connector");

    // A demo distributor (websocket mode), and one in MQ mode whose broker is not there:
    // the MQ metrics are served either way.
    let ws_port = free_port();
    let _ws = start(
        &distributor,
        &[
            "demo",
            "--cycle-seconds",
            "0.1",
            "--port",
            &ws_port.to_string(),
        ],
        &[],
    );
    let mq_port = free_port();
    let state = dir.path().join("mq-state.json");
    let _mq = start(
        &distributor,
        &[
            "demo",
            "--mode",
            "mq",
            "--port",
            &mq_port.to_string(),
            "--mq-state-file",
            state.to_str().unwrap(),
        ],
        &[
            ("RMQ_HOST", "127.0.0.1"),
            ("RMQ_PORT", &free_port().to_string()),
        ],
    );
    // A connector with metrics, one block and one undecodable frame from an observer.
    let (port, metrics_port) = (free_port(), free_port());
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let _connector = start(
        &connector,
        &[
            "--mode",
            "server",
            "--url",
            &format!("127.0.0.1:{port}"),
            "--metrics-addr",
            &metrics_addr,
        ],
        &[],
    );
    let mut observer = None;
    for _ in 0..400 {
        if let Ok((ws, _)) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/save")).await
        {
            observer = Some(Observer::new(ws, Marshaller::Protobuf));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut observer = observer.expect("the connector did not start");
    observer
        .send_block(block_payload(HeaderKind::Header, 0, 1, 100), true)
        .await
        .unwrap();
    observer.send_raw(vec![0xff; 3]).await.unwrap();
    observer
        .send_block(block_payload(HeaderKind::Header, 0, 2, 100), true)
        .await
        .unwrap();

    // One refused history request, so that the refusal family has a sample.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", ws_port))
        .await
        .unwrap();
    let req =
        "POST /totalData HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    // Give the demo's readers a few cycles to read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ws_text = scrape(ws_port).await;
    let mq_text = scrape(mq_port).await;
    let connector_text = scrape(metrics_port).await;
    let exposed: BTreeSet<String> = [&ws_text, &mq_text, &connector_text]
        .into_iter()
        .flat_map(|t| sample_names(t))
        .collect();

    let rules = used_names("deploy/prometheus/firehose-alerts.yml");
    let dashboard = used_names("deploy/grafana/firehose.json");
    // The README names metrics too (crate names such as `firehose_client` aside); a
    // histogram is named there without its `_bucket`/`_sum`/`_count` samples.
    let readme: BTreeSet<String> = used_names("README.md")
        .into_iter()
        .filter(|n| {
            [
                "firehose_distributor_",
                "firehose_connector_",
                "firehose_mq_",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        })
        .collect();
    assert!(readme.len() >= 15, "the README names {readme:?}");
    let histograms: BTreeSet<String> = exposed
        .iter()
        .filter_map(|n| n.strip_suffix("_bucket").map(str::to_owned))
        .collect();
    let missing: Vec<_> = readme
        .iter()
        .filter(|n| !exposed.contains(*n) && !histograms.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "the README names metrics no server exposes: {missing:?}"
    );
    assert!(rules.len() >= 12, "the rules use {rules:?}");
    assert!(dashboard.len() >= 20, "the dashboard uses {dashboard:?}");
    for (file, names) in [
        ("firehose-alerts.yml", &rules),
        ("firehose.json", &dashboard),
    ] {
        let missing: Vec<_> = names.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics no server exposes: {missing:?}"
        );
    }
    // Each family comes from the server it belongs to.
    let from = |text: &str, prefix: &str| sample_names(text).iter().any(|n| n.starts_with(prefix));
    assert!(
        from(&connector_text, "firehose_connector_")
            && !from(&connector_text, "firehose_distributor_")
    );
    assert!(from(&mq_text, "firehose_mq_") && !from(&ws_text, "firehose_mq_"));

    // On a healthy distributor the stalled-reader alert's expression stays low.
    for t in ["cycle", "originalTx", "receipt"] {
        let label = format!("{{data_type=\"{t}\"}}");
        let written = sample(
            &ws_text,
            &format!("firehose_distributor_datalog_last_write_timestamp_seconds{label}"),
        );
        let read = sample(
            &ws_text,
            &format!("firehose_distributor_reader_last_read_timestamp_seconds{label}"),
        );
        assert!(written - read < 60.0, "{t}: written {written}, read {read}");
        assert!(
            sample(
                &ws_text,
                &format!("firehose_distributor_reader_entries_total{label}")
            ) > 0.0,
            "{t} read nothing"
        );
    }
}
