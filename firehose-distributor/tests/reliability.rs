//! The log ring under restarts: three full laps of every data-log ring, the archiver (writer)
//! restarted several times, the distributor stopped while the archiver keeps writing and
//! started again; collectors resume from their own cursors (`since`) and must hold every
//! record exactly once, in order per type.

use firehose_testkit as common;

use std::sync::Arc;
use std::time::Duration;

use firehose_client::{ClientConfig, ResumingClient};
use firehose_core::crypto::KeyPair;
use firehose_core::records::{DataType, Record};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use firehose_sim::ArchiverSim;
use tokio::sync::{mpsc, oneshot};

/// Entries per log file; the ring has 10 files, so a lap of the cycle ring is 40 cycles.
const PER_FILE: u64 = 4;
const CYCLES: u64 = 3 * 10 * PER_FILE;

fn spec() -> FixtureSpec {
    FixtureSpec {
        receipts_per_cycle: 3,
        txs_per_cycle: 2,
        receipt_bytes: 200,
        ..FixtureSpec::default()
    }
}

struct Server {
    d: Arc<Distributor>,
    readers: tokio::task::JoinHandle<()>,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(cfg: &Config, addr: &str) -> Server {
    let d = Distributor::new(cfg.clone()).unwrap();
    let readers = d.start_readers().await.unwrap();
    let listener = firehose_distributor::server::bind(addr).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = d.clone();
    let served = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Server {
        d,
        readers,
        stop,
        served,
    }
}

impl Server {
    /// Like a process exit: the listener, the sessions and the readers go away.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap().unwrap();
        self.readers.abort();
    }
}

fn write(sim: &mut ArchiverSim, written: &mut Vec<Record>, cycles: std::ops::Range<u64>) {
    write_paced(sim, written, cycles, None)
}

/// The archiver's pace while a distributor reads: the next cycle is written once the readers
/// have read what was written since that distributor started (at most 10 s). This test is
/// about restarts; a reader lapped by the ring (possible on a starved machine, when the ring
/// is a few milliseconds of writes long) loses entries by design, counted as gaps.
struct Pace {
    d: Arc<Distributor>,
    written: u64,
}

impl Pace {
    fn after(&mut self, entries: u64) {
        self.written += entries;
        let read = || {
            DataType::ALL
                .iter()
                .map(|t| self.d.entries_read(*t))
                .sum::<u64>()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while read() < self.written && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn write_paced(
    sim: &mut ArchiverSim,
    written: &mut Vec<Record>,
    cycles: std::ops::Range<u64>,
    mut pace: Option<&mut Pace>,
) {
    for _ in cycles {
        let records = sim.write_cycle().unwrap();
        if let Some(p) = pace.as_deref_mut() {
            p.after(records.len() as u64);
        }
        written.extend(records);
        std::thread::sleep(Duration::from_millis(3));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ring_laps_with_writer_and_distributor_restarts_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), PER_FILE).unwrap();
    let cfg = Config {
        data_log_dir: sim.log_dir().to_owned(),
        archiver_db_dir: match sim.layout() {
            firehose_dbstore::Layout::Directory(d) => Some(d.clone()),
            _ => None,
        },
        ..Config::default()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = start(&cfg, &addr).await;

    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Record, u64)>();
    let collectors: Vec<_> = (0..3u8)
        .map(|i| {
            let cfg = ClientConfig::new(
                &format!("ws://{addr}"),
                KeyPair::from_seed([100 + i; 32]),
                server.d.public_key(),
            );
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut client = ResumingClient::new(cfg);
                loop {
                    let r = client.next().await.expect("verified");
                    if tx.send((i as usize, r.record, client.connects())).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    for _ in 0..500 {
        if server.d.hub().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.d.hub().len(), 3);

    let mut written = Vec::new();
    // Lap 1, with an archiver restart halfway.
    let mut pace = Pace {
        d: server.d.clone(),
        written: 0,
    };
    let mut sim = tokio::task::spawn_blocking(move || {
        let mut w = Vec::new();
        write_paced(&mut sim, &mut w, 0..20, Some(&mut pace));
        drop(sim);
        let mut sim = ArchiverSim::create(dir.path(), spec(), PER_FILE).unwrap();
        write_paced(&mut sim, &mut w, 20..40, Some(&mut pace));
        (sim, w, dir)
    })
    .await
    .unwrap();
    written.append(&mut sim.1);
    // The distributor goes down; the archiver writes on (and restarts) meanwhile.
    server.stop().await;
    let (s, mut w, dir) = sim;
    let (s, mut w2, dir) = tokio::task::spawn_blocking(move || {
        let mut s = s;
        write(&mut s, &mut w, 40..50);
        drop(s);
        let mut s = ArchiverSim::create(dir.path(), spec(), PER_FILE).unwrap();
        write(&mut s, &mut w, 50..60);
        (s, w, dir)
    })
    .await
    .unwrap();
    written.append(&mut w2);
    // Back up on the same address; the collectors reconnect and resume from their cursors.
    let server = start(&cfg, &addr).await;
    let mut pace = Pace {
        d: server.d.clone(),
        written: 0,
    };
    let (_, mut w3, _dir) = tokio::task::spawn_blocking(move || {
        let mut s = s;
        let mut w = Vec::new();
        write_paced(&mut s, &mut w, 60..90, Some(&mut pace));
        drop(s);
        let mut s = ArchiverSim::create(dir.path(), spec(), PER_FILE).unwrap();
        write_paced(&mut s, &mut w, 90..CYCLES, Some(&mut pace));
        (s, w, dir)
    })
    .await
    .unwrap();
    written.append(&mut w3);
    assert_eq!(
        written
            .iter()
            .filter(|r| r.data_type() == DataType::Cycle)
            .count() as u64,
        CYCLES
    );

    let mut got: Vec<Vec<Record>> = vec![Vec::new(); 3];
    let mut connects = [0u64; 3];
    while got.iter().any(|g| g.len() < written.len()) {
        let (i, r, c) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out with {:?} of {}",
                    got.iter().map(Vec::len).collect::<Vec<_>>(),
                    written.len()
                )
            })
            .unwrap();
        got[i].push(r);
        connects[i] = c;
    }
    assert!(
        connects.iter().all(|c| *c >= 2),
        "each resumed: {connects:?}"
    );
    // Nothing more arrives.
    if let Ok(Some((i, extra, _))) =
        tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        panic!(
            "collector {i}: an extra {} {}",
            extra.data_type(),
            extra.id()
        );
    }
    for c in collectors {
        c.abort();
    }
    for (i, g) in got.iter().enumerate() {
        common::assert_same_per_type(g, &written, &format!("collector {i}"));
    }
    server.stop().await;
}

/// Runs a back-fill from `since` that stalls (the collector stops reading) after the first
/// receipt, i.e. after the database pass of original transactions; meanwhile the archiver
/// writes `cycles_meanwhile` more cycles. Returns what the back-fill reports and the original
/// transactions it sent, in order.
fn stalled_backfill(
    cycles_meanwhile: u64,
) -> (firehose_distributor::backfill::resume::Backfilled, Vec<u64>) {
    use firehose_core::crypto::Crypto;
    use firehose_core::since::Since;
    use firehose_dbstore::{ArchiverDb, PageKey};
    use firehose_distributor::backfill::resume::{backfill, LogScan, Signer};
    use firehose_distributor::backfill::signatures::SignatureCache;
    use firehose_logreader::StartAt;

    let dir = tempfile::tempdir().unwrap();
    // A ring of 10 files of 2 entries: 10 cycles of original transactions.
    let mut sim = ArchiverSim::create(dir.path(), spec(), 2).unwrap();
    let mut written = Vec::new();
    for _ in 0..3 {
        written.extend(sim.write_cycle().unwrap());
    }
    let first = |t: DataType| written.iter().find(|r| r.data_type() == t).unwrap();
    let since = Since {
        cycle: None,
        original_tx: match first(DataType::OriginalTx) {
            Record::OriginalTx(t) => Some(PageKey::from(t)),
            _ => unreachable!(),
        },
        receipt: match first(DataType::Receipt) {
            Record::Receipt(r) => Some(PageKey::from(r)),
            _ => unreachable!(),
        },
    };
    let db = ArchiverDb::open(sim.layout()).unwrap();
    let logs = LogScan {
        dir: sim.log_dir().to_owned(),
        max_log_files: 10,
        start: [StartAt::Oldest; 3],
    };
    let (tx, mut rx) = mpsc::channel(1);
    let job = std::thread::spawn(move || {
        let keys = KeyPair::from_seed([5; 32]);
        let signer = Signer {
            crypto: &Crypto::default(),
            keys: &keys,
            cache: &SignatureCache::new(0),
        };
        backfill(
            &db,
            &signer,
            &since,
            Some(&logs),
            None,
            &tx,
            // One message a batch: the back-fill stalls exactly where the collector stops.
            1,
        )
        .unwrap()
    });
    let mut sent_txs = Vec::new();
    let mut note = |m: &str| {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        if let Some(t) = v.get("originalTx") {
            sent_txs.push(t["cycle"].as_u64().unwrap());
        }
        v.get("receipt").is_some()
    };
    // Read up to the first receipt: the transactions' database pass is over.
    'first: while let Some(batch) = rx.blocking_recv() {
        for m in batch {
            if note(m.json()) {
                break 'first;
            }
        }
    }
    for _ in 0..cycles_meanwhile {
        sim.write_cycle().unwrap();
    }
    while let Some(batch) = rx.blocking_recv() {
        for m in batch {
            note(m.json());
        }
    }
    (job.join().unwrap(), sent_txs)
}

#[test]
fn a_backfill_lapped_by_the_log_ring_stops_instead_of_reordering() {
    // One cycle meanwhile: its transactions are still in the logs and follow in order.
    let (done, txs) = stalled_backfill(1);
    assert_eq!(done.lapped, None);
    assert_eq!(
        txs,
        vec![0, 1, 1, 2, 2, 3, 3],
        "in order, from the logs at the end"
    );
    // Fifteen: the ring (10 cycles of transactions) went round; cycle 3's are only in SQLite.
    let (done, txs) = stalled_backfill(15);
    assert_eq!(done.lapped, Some(DataType::OriginalTx));
    assert_eq!(txs, vec![0, 1, 1, 2, 2], "nothing after the hole");
}
