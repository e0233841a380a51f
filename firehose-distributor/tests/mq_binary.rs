//! `firehose-distributor --mode mq` as a process: killed with SIGKILL mid-stream and started
//! again, it resumes from its state file; the consumer group declared by `--mq-queue-prefix`
//! gets every record, duplicates only with the same message id.

use firehose_testkit as common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{broker, collect, unique};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::config::Config;
use firehose_distributor::mq::message_id;
use firehose_sim::ArchiverSim;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(sim: &ArchiverSim, dir: &std::path::Path, uri: &str, base: &str, port: u16) -> Proc {
    let firehose_dbstore::Layout::Directory(db) = sim.layout() else {
        unreachable!()
    };
    let host_port = uri.split('@').nth(1).unwrap().split('/').next().unwrap();
    let (host, mq_port) = host_port.split_once(':').unwrap();
    std::fs::write(dir.join("distributor-config.json"), "{}").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--mode", "mq", "--log-level", "warn"])
        .arg("--config")
        .arg(dir.join("distributor-config.json"))
        .env("DISTRIBUTOR_PORT", port.to_string())
        .env("DATA_LOG_DIR", sim.log_dir())
        .env("ARCHIVER_DB_DIR", db)
        .env("RMQ_HOST", host)
        .env("RMQ_PORT", mq_port)
        .env("RMQ_CYCLES_EXCHANGE_NAME", format!("{base}.cycles"))
        .env(
            "RMQ_ORIGINAL_TXS_EXCHANGE_NAME",
            format!("{base}.originalTxs"),
        )
        .env("RMQ_RECEIPTS_EXCHANGE_NAME", format!("{base}.receipts"))
        .env("MQ_QUEUE_PREFIX", format!("{base}.group"))
        .env("MQ_BATCH_CYCLES", "2")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

async fn metric(port: u16, name: &str) -> Option<i64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_metric(port: u16, name: &str, at_least: i64) -> i64 {
    for _ in 0..1000 {
        if let Some(v) = metric(port, name).await.filter(|v| *v >= at_least) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never reached {at_least}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_resumes_from_the_state_file() {
    let Some(uri) = broker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        receipts_per_cycle: 10,
        txs_per_cycle: 5,
        receipt_bytes: 400,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 300).unwrap();
    let mut written = Vec::new();
    for _ in 0..40 {
        written.extend(sim.write_cycle().unwrap());
    }
    let base = unique("bin");
    let port = free_port();
    let p = start(&sim, dir.path(), &uri, &base, port);
    // Once a few cycles are settled, kill it without warning.
    wait_metric(port, "firehose_mq_cursor_cycle", 5).await;
    drop(p);
    let state = dir.path().join("firehose-mq-state.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let checkpoint = saved["through"].as_u64().unwrap();
    for _ in 0..3 {
        written.extend(sim.write_cycle().unwrap());
    }
    let port = free_port();
    let _p = start(&sim, dir.path(), &uri, &base, port);
    // Live entries go out too (woken by the data logs).
    wait_metric(port, "firehose_mq_connected", 1).await;
    for _ in 0..2 {
        written.extend(sim.write_cycle().unwrap());
    }
    let want: HashSet<String> = written.iter().map(message_id).collect();
    let got = collect(
        &uri,
        &format!("{base}.group"),
        Config::default().keys().unwrap().public_key(),
        &want,
        Duration::from_secs(30),
        Duration::from_millis(300),
    )
    .await;
    let got_ids: HashSet<String> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got_ids, want, "every record, none foreign");
    let dups = common::duplicates(&got);
    for id in dups.keys() {
        let cycle: u64 = got
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| match r {
                firehose_core::records::Record::Cycle(c) => c.counter,
                firehose_core::records::Record::OriginalTx(t) => t.cycle,
                firehose_core::records::Record::Receipt(x) => x.cycle,
            })
            .unwrap();
        assert!(
            cycle > checkpoint,
            "{id} duplicated but before the checkpoint {checkpoint}"
        );
    }
    // Websocket subscriptions are refused in MQ mode.
    let cfg = firehose_client::ClientConfig::new(
        &format!("ws://127.0.0.1:{port}"),
        firehose_core::crypto::KeyPair::from_seed([3; 32]),
        Config::default().keys().unwrap().public_key(),
    );
    match firehose_client::Client::connect(&cfg).await {
        Err(firehose_client::ClientError::Ws(e)) => {
            assert!(e.to_string().contains("503"), "{e}")
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

#[test]
fn mq_mode_without_a_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("distributor-config.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--mode", "mq"])
        .arg("--config")
        .arg(dir.path().join("distributor-config.json"))
        .env("DATA_LOG_DIR", dir.path())
        .env_remove("ARCHIVER_DB_DIR")
        .env_remove("ARCHIVER_DB_PATH")
        .env("DISTRIBUTOR_PORT", free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ARCHIVER_DB_DIR"), "{err}");
}
