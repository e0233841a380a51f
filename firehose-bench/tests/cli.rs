//! The bench binary end to end: each scenario against real server processes on loopback,
//! small sizes; the figures themselves are not asserted (timing belongs to runs, not tests),
//! only that the runs are complete and lossless and the output is what scripts read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `name` beside the bench binary (cargo builds every workspace binary there for
/// `cargo test --workspace`); built on demand when only this package is tested.
fn sibling(package: &str, name: &str) -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_firehose-bench"));
    let p = bench.with_file_name(name);
    if !p.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
    }
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firehose-bench"))
        .args(args)
        .output()
        .unwrap()
}

fn json_run(args: &[&str]) -> Value {
    let out = bench(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn fanout_spawned_distributor_is_lossless() {
    let bin = sibling("firehose-distributor", "firehose-distributor");
    let v = json_run(&[
        "fanout",
        "--json",
        "--clients",
        "30",
        "--entries",
        "120",
        "--rate",
        "0",
        "--log-file-entries",
        "50",
        "--verify",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(v["scenario"], "fanout");
    assert_eq!(v["deliveries"], 30 * 120, "{v}");
    assert_eq!((v["lost"].as_u64(), v["dup"].as_u64()), (Some(0), Some(0)));
    assert_eq!(v["client_errors"], 0);
    assert!(v["server_peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(v["latency_p99_ms"].as_f64().unwrap() >= v["latency_p50_ms"].as_f64().unwrap());
}

#[test]
fn fanout_raw_broadcaster_is_lossless() {
    let v = json_run(&[
        "fanout",
        "--json",
        "--raw",
        "--clients",
        "20",
        "--entries",
        "50",
        "--rate",
        "0",
    ]);
    assert_eq!(v["deliveries"], 20 * 50, "{v}");
    assert_eq!(v["verdict"], "lost=0 dup=0");
}

#[test]
fn fanout_against_a_running_distributor_with_the_printed_allow_list() {
    let bin = sibling("firehose-distributor", "firehose-distributor");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let keys = bench(&["keys", "--clients", "5", "--key-seed", "9"]);
    assert!(keys.status.success());
    let subscribers: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(subscribers.as_array().unwrap().len(), 5);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = serde_json::json!({
        "DISTRIBUTOR_PORT": port,
        "DATA_LOG_DIR": logs,
        "limitToSubscribersOnly": true,
        "subscribers": subscribers,
    });
    let cfg_path = dir.path().join("distributor-config.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut server = Command::new(&bin)
        .arg("--config")
        .arg(&cfg_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..500 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("ws://{addr}");
    let pid = server.id().to_string();
    let v = json_run(&[
        "fanout",
        "--json",
        "--url",
        &url,
        "--data-log-dir",
        logs.to_str().unwrap(),
        "--pid",
        &pid,
        "--clients",
        "5",
        "--key-seed",
        "9",
        "--entries",
        "40",
        "--rate",
        "400",
    ]);
    // Keys of another seed are not on the allow-list: refused, and said so.
    let refused = bench(&[
        "fanout",
        "--url",
        &url,
        "--data-log-dir",
        logs.to_str().unwrap(),
        "--clients",
        "1",
        "--key-seed",
        "10",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(v["deliveries"], 5 * 40, "{v}");
    assert_eq!(v["verdict"], "lost=0 dup=0");
    assert!(v["server_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("could not connect") && err.contains("401"),
        "{err}"
    );
}

#[test]
fn backfill_reads_the_whole_history_once() {
    let bin = sibling("firehose-distributor", "firehose-distributor");
    let v = json_run(&[
        "backfill",
        "--json",
        "--clients",
        "2",
        "--cycles",
        "4",
        "--per-cycle",
        "30",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(v["received"], 2 * 4 * 30 * 2, "{v}");
    assert_eq!(v["verdict"], "lost=0 dup=0");
    assert_eq!(v["out_of_order"], 0);
    // The same through the history API: 102 cycles are two spans, the first two full pages.
    let v = json_run(&[
        "backfill",
        "--json",
        "--via",
        "http",
        "--cycles",
        "102",
        "--per-cycle",
        "2",
        "--size",
        "100",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(v["received"], 102 * 2 * 2, "{v}");
    assert_eq!(v["verdict"], "lost=0 dup=0");
    assert_eq!(v["out_of_order"], 0);
}

#[test]
fn history_syncs_like_the_collector_and_reports_errors() {
    let bin = sibling("firehose-distributor", "firehose-distributor");
    let v = json_run(&[
        "history",
        "--json",
        "--clients",
        "3",
        "--cycles",
        "5",
        "--per-cycle",
        "30",
        "--size",
        "200",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    // Per collector: 5 cycles, 150 receipts, 150 original txs, every one once, in order.
    assert_eq!(v["rows"], 3 * (5 + 150 + 150), "{v}");
    assert_eq!(v["verdict"], "lost=0 dup=0", "{v}");
    assert_eq!(v["client_errors"], 0, "{v}");
    // totalData, one cycle page, two pages of each keyed type: at least 6 requests each.
    assert!(v["requests"].as_u64().unwrap() >= 3 * 6, "{v}");
    assert!(v["server_peak_rss_mib"].as_f64().unwrap() > 0.0, "{v}");
    // Nobody listening: the run says so and exits non-zero, it does not hang.
    let out = bench(&["history", "--json", "--url", "http://127.0.0.1:1"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_errors"], 1, "{v}");
}

#[test]
fn connector_prints_every_block_once_and_table_output() {
    let bin = sibling("firehose-ws-connector", "firehose-ws-connector");
    let out = bench(&[
        "connector",
        "--observers",
        "3",
        "--blocks",
        "40",
        "--size",
        "2048",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(table.starts_with("connector\n"), "{table}");
    assert!(table.contains("verdict"), "{table}");
    assert!(table.contains("lost=0 dup=0"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("blocks ") && l.ends_with(" 120")),
        "{table}"
    );
}

#[test]
fn clear_errors() {
    let out = bench(&["fanout", "--clients", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clients must be at least 1"));
    let out = bench(&[
        "fanout",
        "--server-bin",
        "/nonexistent/firehose-distributor",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
    let out = bench(&["fanout", "--url", "ws://127.0.0.1:1"]);
    assert!(!out.status.success(), "--url needs --data-log-dir");
    let help = bench(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for sub in ["fanout", "backfill", "history", "connector", "keys"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn herd_through_a_restart_is_complete_and_refused_nothing() {
    let bin = sibling("firehose-distributor", "firehose-distributor");
    let v = json_run(&[
        "herd",
        "--json",
        "--clients",
        "20",
        "--rate",
        "40",
        "--before",
        "1",
        "--outage",
        "2",
        "--after",
        "3",
        "--reconnect-delay",
        "0.5",
        "--drain",
        "30",
        "--server-bin",
        bin.to_str().unwrap(),
    ]);
    assert_eq!(v["back_live"], 20, "{v}");
    assert_eq!(v["refused"], 0, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["from_replay"], 20, "{v}");
    assert!(v["receipts"].as_u64().unwrap() > v["backlog"].as_u64().unwrap());
}
