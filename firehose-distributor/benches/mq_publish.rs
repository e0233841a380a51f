//! Records/s published to RabbitMQ with confirms, from a fixture database.
//!
//! `cargo bench -p firehose-distributor --bench mq_publish -- --bench [CYCLES]`
//! (without `--bench`: a small smoke run). Needs a broker (`FIREHOSE_TEST_AMQP`, default the
//! local RabbitMQ with guest/guest); skips without one.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use firehose_dbstore::fixture::FixtureSpec;
use firehose_dbstore::ArchiverDb;
use firehose_distributor::config::Config;
use firehose_distributor::mq::publisher::Publisher;
use firehose_distributor::mq::{Exchanges, MqConfig};
use firehose_sim::ArchiverSim;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let cycles: u64 = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if full { 200 } else { 5 });
    let uri = std::env::var("FIREHOSE_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let host = uri
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5672")
        .to_owned();
    if std::net::TcpStream::connect(&host).is_err() {
        eprintln!("mq_publish: no broker; skipped");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        receipts_per_cycle: 50,
        txs_per_cycle: 50,
        receipt_bytes: 1024,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 100_000).unwrap();
    let mut total = 0u64;
    for _ in 0..cycles {
        total += sim.write_cycle().unwrap().len() as u64;
    }
    let mut mq = MqConfig::from_env(|_| None, dir.path()).unwrap();
    mq.uri = uri;
    let tag = format!("firehose-bench-{}", std::process::id());
    mq.exchanges = Exchanges {
        cycles: format!("{tag}.cycles"),
        original_txs: format!("{tag}.originalTxs"),
        receipts: format!("{tag}.receipts"),
    };
    mq.lag_cycles = 0;
    let cfg = Config::default();
    let p = Publisher::new(
        mq,
        ArchiverDb::open(sim.layout()).unwrap(),
        cfg.crypto().unwrap(),
        cfg.keys().unwrap(),
    )
    .unwrap();
    let stats = p.stats();
    rt.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let start = Instant::now();
        let run = tokio::spawn(p.run(None, async {
            let _ = stopped.await;
        }));
        while stats.confirmed.get() < total {
            if start.elapsed() > Duration::from_secs(60) || run.is_finished() {
                eprintln!("mq_publish: no confirms within 60 s; stopped");
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "mq_publish: {total} records (1 KiB receipts) signed, published and confirmed in {secs:.2} s: {:.0} records/s",
            total as f64 / secs
        );
        let _ = stop.send(());
        let _ = run.await;
    });
}
