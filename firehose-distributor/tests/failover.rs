//! A Rust collector on two distributors over one archiver: the one in use is SIGKILLed
//! mid-stream, the collector resumes on the other (its own signing key) from the last record
//! it handed out, and gets every entry exactly once.

use firehose_testkit as common;

use std::collections::HashMap;
use std::time::Duration;

use firehose_client::{ClientConfig, ResumingClient};
use firehose_core::crypto::KeyPair;
use firehose_core::records::{DataType, Record};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_sim::ArchiverSim;

/// A distributor on `sim`'s logs and database, signing with `keys`.
fn distributor(
    dir: &std::path::Path,
    name: &str,
    sim: &ArchiverSim,
    keys: &KeyPair,
) -> (common::process::Proc, String) {
    let firehose_dbstore::Layout::Directory(db) = sim.layout().clone() else {
        panic!("the simulator writes a database directory")
    };
    let port = common::process::free_port();
    let cfg = dir.join(format!("{name}.json"));
    let file = serde_json::json!({
        "DISTRIBUTOR_PORT": port,
        "DATA_LOG_DIR": sim.log_dir(),
        "ARCHIVER_DB_DIR": db,
        "DISTRIBUTOR_PUBLIC_KEY": keys.public_key().to_hex(),
        "DISTRIBUTOR_SECRET_KEY": keys.secret_key_hex(),
        "IMPLICIT_RESUME": false,
    });
    std::fs::write(&cfg, file.to_string()).unwrap();
    let child =
        common::process::start_binary(env!("CARGO_BIN_EXE_firehose-distributor"), &cfg, "error");
    (child, format!("ws://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_distributor_fails_over_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        cycles: 0,
        receipts_per_cycle: 10,
        txs_per_cycle: 10,
        receipt_bytes: 512,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 200).unwrap();
    let (ka, kb) = (KeyPair::from_seed([91; 32]), KeyPair::from_seed([92; 32]));
    let (mut a, url_a) = distributor(dir.path(), "a", &sim, &ka);
    let (mut b, url_b) = distributor(dir.path(), "b", &sim, &kb);
    let cfg = ClientConfig::new(&url_a, KeyPair::from_seed([93; 32]), ka.public_key());
    let mut client = ResumingClient::new(cfg).with_fallback(&url_b, kb.public_key());
    let (tx, mut got) = tokio::sync::mpsc::unbounded_channel::<(DataType, String, String)>();
    let reader = tokio::spawn(async move {
        loop {
            let r = client.next().await.unwrap();
            let url = client.url().to_owned();
            if tx
                .send((r.record.data_type(), r.record.id().to_owned(), url))
                .is_err()
            {
                return;
            }
        }
    });
    // Until the collector is live on A: a cycle it receives whole.
    let mut want: Vec<Record> = Vec::new();
    let mut seen: HashMap<(DataType, String), (usize, String)> = HashMap::new();
    let mut live = false;
    for _ in 0..100 {
        let probe = sim.write_cycle().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok((t, id, url)) = got.try_recv() {
            seen.entry((t, id)).or_insert((0, url)).0 += 1;
        }
        if probe
            .iter()
            .all(|r| seen.contains_key(&(r.data_type(), r.id().to_owned())))
        {
            live = true;
            break;
        }
    }
    assert!(live, "the collector went live on A");
    seen.clear();
    for _ in 0..5 {
        want.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // A dies mid-stream; the archiver writes on.
    common::process::signal(&a, "-KILL");
    a.wait().unwrap();
    for _ in 0..10 {
        want.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while want
        .iter()
        .any(|r| !seen.contains_key(&(r.data_type(), r.id().to_owned())))
    {
        let next = tokio::time::timeout_at(deadline, got.recv()).await;
        let Ok(Some((t, id, url))) = next else {
            panic!("stalled: {} of {} received", seen.len(), want.len());
        };
        seen.entry((t, id)).or_insert((0, url)).0 += 1;
    }
    // A little longer: nothing arrives twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok((t, id, url)) = got.try_recv() {
        seen.entry((t, id)).or_insert((0, url)).0 += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, (n, _))| *n > 1).collect();
    assert!(twice.is_empty(), "received twice: {twice:?}");
    assert!(
        seen.values().any(|(_, url)| *url == url_b),
        "the collector moved to B"
    );
    reader.abort();
    let _ = b.kill();
    let _ = b.wait();
}
