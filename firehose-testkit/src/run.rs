//! A distributor on a simulated archiver (logs and database), serving on loopback.

use std::sync::Arc;

use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use firehose_sim::ArchiverSim;
use tokio::sync::oneshot;

/// A distributor serving a simulated archiver's logs and database on loopback.
pub struct Running {
    /// `ws://host:port`.
    pub url: String,
    /// The distributor.
    pub d: Arc<Distributor>,
    /// The archiver writing its logs and database.
    pub sim: ArchiverSim,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

/// 5 receipts and 5 original txs a cycle, receipts of `receipt_bytes`.
pub fn spec(receipt_bytes: usize) -> FixtureSpec {
    FixtureSpec {
        receipts_per_cycle: 5,
        txs_per_cycle: 5,
        receipt_bytes,
        ..FixtureSpec::default()
    }
}

/// Starts an archiver (`max_entries` a log file) and a distributor on it; `tweak` adjusts
/// the config first.
pub async fn start(
    spec: FixtureSpec,
    max_entries: u64,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let sim = ArchiverSim::create(dir.path(), spec, max_entries).unwrap();
    let mut cfg = Config {
        data_log_dir: sim.log_dir().to_owned(),
        archiver_db_dir: match sim.layout() {
            firehose_dbstore::Layout::Directory(d) => Some(d.clone()),
            _ => None,
        },
        ..Config::default()
    };
    tweak(&mut cfg);
    let d = Distributor::new(cfg).unwrap();
    d.start_readers().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = d.clone();
    tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    Running {
        url,
        d,
        sim,
        stop: Some(stop),
        _dir: dir,
    }
}

impl Running {
    /// Shuts the server down as SIGTERM does (sessions are closed with 1001).
    #[allow(dead_code)] // not every test binary shuts down by hand
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits until `d` has `n` sessions (at most 5 s, or the test fails).
pub async fn wait_sessions(d: &Distributor, n: usize) {
    for _ in 0..500 {
        if d.hub().len() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("expected {n} sessions, have {}", d.hub().len());
}

/// A resume point before every receipt and original transaction.
#[allow(dead_code)] // not every test binary resumes
pub fn from_the_start() -> firehose_core::since::Since {
    let first = firehose_dbstore::PageKey {
        cycle: 0,
        timestamp: 0,
        id: String::new(),
    };
    firehose_core::since::Since {
        cycle: None,
        original_tx: Some(first.clone()),
        receipt: Some(first),
    }
}
