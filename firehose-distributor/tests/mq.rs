//! MQ mode against a real RabbitMQ on loopback (`.ci/run` starts one; see `common::broker`).

use firehose_testkit as common;

use std::collections::HashSet;
use std::time::Duration;

use common::{broker, collect, declare, duplicates, mq_config, unique, Received};
use firehose_core::crypto::KeyPair;
use firehose_core::records::{DataType, Record};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_dbstore::ArchiverDb;
use firehose_distributor::config::Config;
use firehose_distributor::mq::publisher::Publisher;
use firehose_distributor::mq::{message_id, MqConfig};
use firehose_sim::ArchiverSim;
use tokio::sync::oneshot;

fn spec() -> FixtureSpec {
    FixtureSpec {
        receipts_per_cycle: 6,
        txs_per_cycle: 4,
        receipt_bytes: 300,
        ..FixtureSpec::default()
    }
}

fn publisher(sim: &ArchiverSim, mq: MqConfig) -> Publisher {
    let cfg = Config::default();
    Publisher::new(
        mq,
        ArchiverDb::open(sim.layout()).unwrap(),
        cfg.crypto().unwrap(),
        cfg.keys().unwrap(),
    )
    .unwrap()
}

/// Runs `p` on its own task; sending on the returned channel shuts it down.
fn spawn(
    p: Publisher,
    wake: Option<firehose_logreader::LogTail>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), firehose_distributor::mq::publisher::MqError>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(p.run(wake, async {
        let _ = stopped.await;
    }));
    (stop, run)
}

fn distributor_key() -> firehose_core::crypto::PublicKey {
    Config::default().keys().unwrap().public_key()
}

/// Per type, the ids in `got` are exactly `written` (by message id), in the same order.
fn assert_exactly_once_in_order(got: &Received, written: &[Record], who: &str) {
    assert!(
        duplicates(got).is_empty(),
        "{who}: duplicates {:?}",
        duplicates(got)
    );
    for t in DataType::ALL {
        let w: Vec<String> = written
            .iter()
            .filter(|r| r.data_type() == t)
            .map(message_id)
            .collect();
        let g: Vec<String> = got
            .iter()
            .filter(|(_, r)| r.data_type() == t)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(g, w, "{who}: {t} exactly once, in order");
    }
    for (id, r) in got {
        assert_eq!(*id, message_id(r), "{who}: message id names the record");
    }
}

/// In the database's (cycle, timestamp, id) order per type, as the publisher sends them.
fn key_order(records: &mut [Record]) {
    records.sort_by_key(|r| match r {
        Record::Cycle(c) => (c.counter, 0, String::new()),
        Record::OriginalTx(t) => (t.cycle, t.timestamp, t.tx_id.clone()),
        Record::Receipt(x) => (x.cycle, x.timestamp, x.receipt_id.clone()),
    });
}

fn ids(records: &[Record]) -> HashSet<String> {
    records.iter().map(message_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumer_groups_each_get_every_record_once_in_order() {
    let Some(uri) = broker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), 40).unwrap();
    let mut written = Vec::new();
    for _ in 0..8 {
        written.extend(sim.write_cycle().unwrap());
    }
    let mq = mq_config(&uri, "groups", dir.path());
    let groups: Vec<String> = (0..3).map(|i| unique(&format!("g{i}"))).collect();
    for g in &groups {
        declare(&uri, &mq.exchanges, g).await;
    }
    let p = publisher(&sim, mq.clone());
    let stats = p.stats();
    let wake = firehose_logreader::tail_all(
        sim.log_dir(),
        |_| firehose_logreader::StartAt::Live,
        Default::default(),
    )
    .await
    .unwrap();
    let (stop, run) = spawn(p, Some(wake));
    // Live: more cycles while publishing.
    for _ in 0..4 {
        written.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    key_order(&mut written);
    let want = ids(&written);
    for g in &groups {
        let got = collect(
            &uri,
            g,
            distributor_key(),
            &want,
            Duration::from_secs(30),
            Duration::from_millis(300),
        )
        .await;
        assert_exactly_once_in_order(&got, &written, g);
    }
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.confirmed.get(), written.len() as u64);
    // 12 cycles (0..=11), 3 kept open for late data: the cursor is at 8.
    assert_eq!(stats.through_plus_one.load(Relaxed), 9);
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    let saved = firehose_distributor::mq::state::StateFile::new(&mq.state_file)
        .load()
        .unwrap();
    assert_eq!(saved.through, Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_in_open_cycles_are_published_again_with_a_new_id() {
    let Some(uri) = broker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), 1000).unwrap();
    let mut written = Vec::new();
    for _ in 0..5 {
        written.extend(sim.write_cycle().unwrap());
    }
    let mq = mq_config(&uri, "late", dir.path());
    let group = unique("late-g");
    declare(&uri, &mq.exchanges, &group).await;
    let p = publisher(&sim, mq);
    let (stop, run) = spawn(p, None);
    key_order(&mut written);
    let got = collect(
        &uri,
        &group,
        distributor_key(),
        &ids(&written),
        Duration::from_secs(30),
        Duration::from_millis(200),
    )
    .await;
    assert_exactly_once_in_order(&got, &written, "before");
    // A receipt of cycle 3 (still open: newest is 4) gets a newer version.
    let Record::Receipt(mut late) = written
        .iter()
        .find(|r| matches!(r, Record::Receipt(x) if x.cycle == 3))
        .unwrap()
        .clone()
    else {
        unreachable!()
    };
    late.timestamp += 5;
    let late = Record::Receipt(late);
    sim.commit(std::slice::from_ref(&late)).unwrap();
    let want: HashSet<String> = [message_id(&late)].into();
    let again = collect(
        &uri,
        &group,
        distributor_key(),
        &want,
        Duration::from_secs(10),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(again.len(), 1, "only the new version: {again:?}");
    assert_eq!(again[0].1, late);
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_publisher_resumes_from_its_checkpoint() {
    let Some(uri) = broker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), 50).unwrap();
    let mut written = Vec::new();
    for _ in 0..30 {
        written.extend(sim.write_cycle().unwrap());
    }
    let mut mq = mq_config(&uri, "kill", dir.path());
    mq.batch_cycles = 2;
    let group = unique("kill-g");
    declare(&uri, &mq.exchanges, &group).await;
    let first = publisher(&sim, mq.clone());
    let stats = first.stats();
    let run = tokio::spawn(first.run(None, std::future::pending()));
    // Kill it mid-stream (no shutdown path), once some cycles are settled.
    use std::sync::atomic::Ordering::Relaxed;
    for _ in 0..1000 {
        if stats.through_plus_one.load(Relaxed) >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    run.abort();
    let _ = run.await;
    let checkpoint = firehose_distributor::mq::state::StateFile::new(&mq.state_file)
        .load()
        .unwrap()
        .through
        .expect("a checkpoint was saved");
    assert!(checkpoint >= 5, "checkpoint {checkpoint}");
    // More data while it is down, then a new process from the checkpoint.
    for _ in 0..3 {
        written.extend(sim.write_cycle().unwrap());
    }
    let second = publisher(&sim, mq.clone());
    assert_eq!(second.cursor().through, Some(checkpoint));
    let (stop, run) = spawn(second, None);
    key_order(&mut written);
    let got = collect(
        &uri,
        &group,
        distributor_key(),
        &ids(&written),
        Duration::from_secs(30),
        Duration::from_millis(300),
    )
    .await;
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    // Nothing missing; duplicates only after the checkpoint, each with the same id and body.
    let got_ids: HashSet<String> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got_ids, ids(&written), "every record arrived");
    for (id, n) in duplicates(&got) {
        let copies: Vec<&Record> = got
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, r)| r)
            .collect();
        assert!(copies.windows(2).all(|w| w[0] == w[1]), "{id}: same record");
        let cycle = match copies[0] {
            Record::Cycle(c) => c.counter,
            Record::OriginalTx(t) => t.cycle,
            Record::Receipt(r) => r.cycle,
        };
        assert!(
            cycle > checkpoint,
            "{id} ({n}x) is after the checkpoint {checkpoint}"
        );
    }
}

#[tokio::test]
async fn unreachable_broker_is_retried_and_shutdown_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), 50).unwrap();
    sim.write_cycle().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mq = mq_config(
        &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        "down",
        dir.path(),
    );
    let p = publisher(&sim, mq);
    let stats = p.stats();
    let (stop, run) = spawn(p, None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.connected.load(Relaxed), 0);
    assert_eq!(stats.published.get(), 0);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
}

#[test]
fn a_damaged_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ArchiverSim::create(dir.path(), spec(), 50).unwrap();
    let mq = mq_config("amqp://127.0.0.1:1/%2f", "state", dir.path());
    std::fs::write(&mq.state_file, "garbage").unwrap();
    let cfg = Config::default();
    let e = Publisher::new(
        mq,
        ArchiverDb::open(sim.layout()).unwrap(),
        cfg.crypto().unwrap(),
        KeyPair::from_secret_hex(&cfg.secret_key).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("move it away"), "{e}");
}

/// An exchange of that name already exists as another kind (here `direct`): the broker
/// refuses the declaration (406). The publisher stops with an error that says what to change,
/// instead of retrying silently forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_exchange_of_another_kind_is_a_clear_error() {
    use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions};
    let Some(uri) = broker().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let sim = ArchiverSim::create(dir.path(), spec(), 50).unwrap();
    let mq = mq_config(&uri, "precondition", dir.path());
    let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let name = mq.exchanges.receipts.clone();
    ch.exchange_declare(
        name.as_str().into(),
        lapin::ExchangeKind::Direct,
        durable,
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
    let (_stop, run) = spawn(publisher(&sim, mq.clone()), None);
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the publisher stops instead of retrying")
        .unwrap();
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains("exists with other settings") && e.contains(&name),
        "{e}"
    );
    for x in [&mq.exchanges.cycles, &mq.exchanges.original_txs, &name] {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "ok".into()).await;
}
