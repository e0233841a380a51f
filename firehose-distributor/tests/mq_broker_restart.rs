//! The broker goes away mid-stream and comes back (`rabbitmqctl stop_app` / `start_app`): the
//! publisher reconnects and goes on from what was confirmed; nothing is lost. Its own test
//! binary, so that no other test shares the broker while it restarts.

use firehose_testkit as common;

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::{broker, collect, declare, mq_config, unique};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_dbstore::ArchiverDb;
use firehose_distributor::config::Config;
use firehose_distributor::mq::message_id;
use firehose_distributor::mq::publisher::Publisher;
use firehose_sim::ArchiverSim;

/// `rabbitmqctl` with its node options (`FIREHOSE_TEST_RABBITMQCTL`, default `rabbitmqctl`),
/// if it can talk to the broker.
fn rabbitmqctl() -> Option<Vec<String>> {
    let cmd: Vec<String> = std::env::var("FIREHOSE_TEST_RABBITMQCTL")
        .unwrap_or_else(|_| "rabbitmqctl".into())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let ok = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .args(["-q", "status"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(cmd);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("cannot control the broker with {cmd:?}: CI must allow it (see .ci/run)");
    }
    eprintln!("\n!!!!! SKIPPED: cannot run {cmd:?} to restart the broker !!!!!\n");
    None
}

fn ctl(cmd: &[String], what: &str) {
    let s = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(what)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(s.success(), "rabbitmqctl {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing_confirmed() {
    let Some(uri) = broker().await else { return };
    let Some(cmd) = rabbitmqctl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        receipts_per_cycle: 20,
        txs_per_cycle: 10,
        receipt_bytes: 500,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 200).unwrap();
    let mut written = Vec::new();
    for _ in 0..10 {
        written.extend(sim.write_cycle().unwrap());
    }
    let mq = mq_config(&uri, "restart", dir.path());
    let group = unique("restart-g");
    declare(&uri, &mq.exchanges, &group).await;
    let cfg = Config::default();
    let p = Publisher::new(
        mq,
        ArchiverDb::open(sim.layout()).unwrap(),
        cfg.crypto().unwrap(),
        cfg.keys().unwrap(),
    )
    .unwrap();
    let stats = p.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(p.run(None, async {
        let _ = stopped.await;
    }));
    for _ in 0..500 {
        if stats.confirmed.get() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stats.confirmed.get() > 0);
    // The broker goes away while the archiver keeps writing.
    let c = cmd.clone();
    tokio::task::spawn_blocking(move || ctl(&c, "stop_app"))
        .await
        .unwrap();
    for _ in 0..5 {
        written.extend(sim.write_cycle().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stats.connected.load(Relaxed), 0, "the publisher noticed");
    let c = cmd.clone();
    tokio::task::spawn_blocking(move || ctl(&c, "start_app"))
        .await
        .unwrap();
    for _ in 0..5 {
        written.extend(sim.write_cycle().unwrap());
    }
    let want: HashSet<String> = written.iter().map(message_id).collect();
    let got = collect(
        &uri,
        &group,
        cfg.keys().unwrap().public_key(),
        &want,
        Duration::from_secs(60),
        Duration::from_millis(300),
    )
    .await;
    let got_ids: HashSet<String> = got.iter().map(|(id, _)| id.clone()).collect();
    let missing: Vec<&String> = want.difference(&got_ids).collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(stats.reconnects.get() >= 1);
    // Within each type, first arrivals keep the database order.
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}
