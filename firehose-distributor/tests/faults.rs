//! Disk faults: a database that is missing or locked, data-log files that disappear or a
//! pointer to nothing. Each gets a clear error and a retry; the process and the live stream
//! carry on, and nothing already committed is lost.

use firehose_testkit as common;

use std::sync::Arc;
use std::time::Duration;

use firehose_client::{Client, ClientConfig, ClientError};
use firehose_client::{HttpClient, HttpError};
use firehose_core::crypto::KeyPair;
use firehose_core::since::Since;
use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::Layout;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use firehose_logreader::{DataLogWriter, WriterOptions};

struct Running {
    d: Arc<Distributor>,
    addr: std::net::SocketAddr,
}

async fn serve(cfg: Config) -> Running {
    let d = Distributor::new(cfg).unwrap();
    d.start_readers().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    Running { d, addr }
}

fn http(r: &Running) -> HttpClient {
    HttpClient::new(
        &format!("http://{}", r.addr),
        KeyPair::from_seed([7; 32]),
        r.d.public_key(),
    )
}

fn collector(r: &Running, seed: u8) -> ClientConfig {
    ClientConfig::new(
        &format!("ws://{}", r.addr),
        KeyPair::from_seed([seed; 32]),
        r.d.public_key(),
    )
}

fn receipt_writer(dir: &std::path::Path, per_file: u64) -> DataLogWriter {
    let opts = WriterOptions {
        max_entries: per_file,
        ..WriterOptions::default()
    };
    DataLogWriter::open(dir, "receipt", opts).unwrap()
}

fn small_spec() -> FixtureSpec {
    FixtureSpec {
        cycles: 5,
        receipts_per_cycle: 4,
        txs_per_cycle: 4,
        receipt_bytes: 200,
        ..FixtureSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_missing_at_start_is_opened_once_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let db_dir = dir.path().join("db");
    let r = serve(Config {
        data_log_dir: logs,
        archiver_db_dir: Some(db_dir.clone()),
        ..Config::default()
    })
    .await;
    let api = http(&r);
    match api.total_data().await {
        Err(HttpError::Refused { status, error }) => {
            assert_eq!(status, 503);
            assert!(
                error.contains("not available") && error.contains("db"),
                "{error}"
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // A resuming collector is told to come back (1011), not streamed live with a gap.
    let mut cfg = collector(&r, 8);
    cfg.since = Some(Since {
        cycle: Some(0),
        ..Since::default()
    });
    let mut sub = Client::connect(&cfg).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Err(ClientError::Closed { code, .. }))) => assert_eq!(code, 1011),
        other => panic!("expected a 1011 close, got {other:?}"),
    }
    let m = metrics(r.addr).await;
    assert!(
        m.contains("firehose_distributor_resumes_refused_total 1\n"),
        "{m}"
    );
    // The archiver creates it: history is served without a restart.
    fixture::build(&Layout::Directory(db_dir), &small_spec()).unwrap();
    let mut total = None;
    for _ in 0..100 {
        if let Ok(v) = api.total_data().await {
            total = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = total.expect("served once the database exists");
    assert_eq!(total.cycles, 5, "{total:?}");
    // And the collector that resumes now gets cycles 1..=4.
    let mut sub = Client::connect(&cfg).await.unwrap();
    for want in 1..=4u64 {
        let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.record.cycle(), want);
    }
}

/// A distributor on one database file in rollback-journal mode, and a connection that can
/// lock it: there a writer's exclusive lock blocks readers (in WAL mode, the archiver's, it
/// never does).
async fn lockable_database() -> (tempfile::TempDir, rusqlite::Connection, Running) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = dir.path().join("archiver.sqlite3");
    fixture::build(&Layout::SingleFile(path.clone()), &small_spec()).unwrap();
    let locker = rusqlite::Connection::open(&path).unwrap();
    let mode: String = locker
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let r = serve(Config {
        data_log_dir: logs,
        archiver_db_path: Some(path),
        ..Config::default()
    })
    .await;
    (dir, locker, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gets_503_then_recovers() {
    let (_dir, locker, r) = lockable_database().await;
    let api = http(&r);
    assert_eq!(api.total_data().await.unwrap().cycles, 5);
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The query waits out the busy timeout, then fails clearly; /health stays up meanwhile.
    let locked = tokio::spawn(async move { api.total_data().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(r.addr),
    )
    .await;
    assert!(matches!(health, Ok(Ok(_))), "still accepting connections");
    match locked.await.unwrap() {
        Err(HttpError::Refused { status, error }) => {
            assert_eq!(status, 503);
            assert!(error.contains("database"), "{error}");
        }
        other => panic!("expected 503 while locked, got {other:?}"),
    }
    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(http(&r).total_data().await.unwrap().cycles, 5);
}

/// More history requests than the pool and its queue take, while every query is stuck on a
/// lock: the excess is refused at once with 503 and `Retry-After`, the queued ones after the
/// queue timeout; nothing hangs and no thread is held per waiting request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_queue_gets_503_with_retry_after() {
    use firehose_distributor::backfill::archive_db::{MAX_WAITING, POOL_SIZE};
    let (_dir, locker, r) = lockable_database().await;
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let keys = KeyPair::from_seed([9; 32]);
    let body = common::api::signed(serde_json::json!({}), &keys);
    let n = POOL_SIZE + MAX_WAITING + 40;
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let body = body.clone();
            let addr = r.addr;
            tokio::spawn(async move {
                common::api::http_with(addr, "POST", "/totalData", "", &body).await
            })
        })
        .collect();
    let mut retry_after = 0;
    for req in requests {
        let (status, head, _) = tokio::time::timeout(Duration::from_secs(30), req)
            .await
            .expect("every request is answered")
            .unwrap();
        assert_eq!(status, 503);
        retry_after += usize::from(head.to_ascii_lowercase().contains("retry-after: 1"));
    }
    assert!(retry_after >= 40, "{retry_after} of {n} with Retry-After");
    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(http(&r).total_data().await.unwrap().cycles, 5);
}

fn receipt_line(i: u64) -> String {
    firehose_core::fixtures::receipt(i, 1_700_000_000_000 + i, i, 100).to_canonical_json()
}

/// Reads receipts until `until` (by index in `cycle`) arrives; returns the indexes seen.
async fn receipts_until(sub: &mut firehose_client::Subscription, until: u64) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {got:?}"))
            .unwrap()
            .unwrap();
        let c = r.record.cycle();
        got.push(c);
        if c == until {
            return got;
        }
    }
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    common::get(&format!("ws://{addr}"), "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_log_deleted_while_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = receipt_writer(dir.path(), 5);
    w.flush().unwrap();
    let r = serve(Config {
        data_log_dir: dir.path().to_owned(),
        ..Config::default()
    })
    .await;
    let cfg = collector(&r, 9);
    let mut sub = Client::connect(&cfg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        w.append(receipt_line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(receipts_until(&mut sub, 2).await, vec![0, 1, 2]);
    // The file being read is deleted; the writer, which holds it open, goes on into it and
    // then rotates into the next file.
    std::fs::remove_file(dir.path().join("receipt-log1.txt")).unwrap();
    for i in 3..12 {
        w.append(receipt_line(i).as_bytes()).unwrap();
        w.flush().unwrap();
    }
    // The reader holds the file open too: it reads the rest of it, then follows the rotation.
    assert_eq!(
        receipts_until(&mut sub, 11).await,
        (3..12).collect::<Vec<_>>()
    );
    let m = metrics(r.addr).await;
    assert!(
        m.contains("firehose_distributor_reader_entries_total{data_type=\"receipt\"} 12"),
        "{m}"
    );
    assert!(
        m.contains("firehose_distributor_reader_file_number{data_type=\"receipt\"} 3"),
        "{m}"
    );
    // Nothing was lost, so no gap is counted.
    assert!(
        m.contains("firehose_distributor_reader_gaps_total{data_type=\"receipt\"} 0"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_to_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    // The pointer names file 4, which does not exist (a partial restore, a manual cleanup).
    std::fs::write(
        dir.path().join("active-receipt-log.txt"),
        "receipt-log4.txt",
    )
    .unwrap();
    let r = serve(Config {
        data_log_dir: dir.path().to_owned(),
        ..Config::default()
    })
    .await;
    let cfg = collector(&r, 10);
    let mut sub = Client::connect(&cfg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The archiver starts writing: it creates file 4 and goes on from there.
    let mut w = receipt_writer(dir.path(), 3);
    for i in 0..7 {
        w.append(receipt_line(i).as_bytes()).unwrap();
        w.flush().unwrap();
    }
    assert_eq!(
        receipts_until(&mut sub, 6).await,
        (0..7).collect::<Vec<_>>()
    );
    let m = metrics(r.addr).await;
    assert!(
        m.contains("firehose_distributor_reader_file_number{data_type=\"receipt\"} 6"),
        "{m}"
    );
}
