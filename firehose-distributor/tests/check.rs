//! `firehose-distributor check` as an operator runs it: a report on stdout, exit 0 when the
//! configuration would serve, 1 with the reason when it would not.

use std::path::Path;
use std::process::Command;

use firehose_core::crypto::KeyPair;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_dbstore::Layout;
use firehose_sim::ArchiverSim;
use serde_json::{json, Value};

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

/// An archiver with a cycle written, and a config with real keys and one listed collector.
fn archiver(dir: &Path) -> Value {
    let mut sim = ArchiverSim::create(dir, FixtureSpec::default(), 100).unwrap();
    let records = sim.write_cycle().unwrap();
    sim.commit(&records).unwrap();
    let Layout::Directory(db) = sim.layout().clone() else {
        panic!("the simulator writes a database directory")
    };
    let keys = KeyPair::generate();
    json!({
        "DISTRIBUTOR_PUBLIC_KEY": keys.public_key().to_hex(),
        "DISTRIBUTOR_SECRET_KEY": keys.secret_key_hex(),
        "DATA_LOG_DIR": sim.log_dir(),
        "ARCHIVER_DB_DIR": db,
        "limitToSubscribersOnly": true,
        "subscribers": [{
            "publicKey": KeyPair::generate().public_key().to_hex(),
            "expirationTimestamp": 0,
            "subscriptionType": "FIREHOSE"
        }],
    })
}

fn write(dir: &Path, cfg: &Value) -> std::path::PathBuf {
    let path = dir.join("distributor-config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    path
}

#[test]
fn a_working_configuration_passes_with_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = archiver(dir.path());
    let (ok, report) = check(&write(dir.path(), &cfg));
    assert!(ok, "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    assert!(report.contains("matches the secret key"), "{report}");
    assert!(report.contains("opens read-only: cycles 1,"), "{report}");
    assert!(
        report.contains("writing cycle-log1.txt, originalTx-log1.txt, receipt-log1.txt"),
        "{report}"
    );
    assert!(report.contains("on, 1 may subscribe"), "{report}");
}

#[test]
fn each_problem_fails_the_check_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = archiver(dir.path());
    let logs = good["DATA_LOG_DIR"].as_str().unwrap().to_owned();
    let parent = Path::new(&logs)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let other = KeyPair::generate().public_key().to_hex();
    let empty_db = dir.path().join("empty-db");
    std::fs::create_dir(&empty_db).unwrap();
    let cases: [(&str, Value, &str); 5] = [
        (
            "DISTRIBUTOR_PUBLIC_KEY",
            json!(other),
            "does not match DISTRIBUTOR_SECRET_KEY",
        ),
        (
            "DATA_LOG_DIR",
            json!(parent),
            &format!("found one in {logs}"),
        ),
        ("ARCHIVER_DB_DIR", json!(empty_db), "empty-db"),
        (
            "subscribers",
            json!([{"publicKey": "ABC", "subscriptionType": "FIREHOSE"}]),
            "subscriber `ABC`",
        ),
        (
            "CLIENT_QUEUE_CAPACITY",
            json!(u64::MAX),
            "CLIENT_QUEUE_CAPACITY",
        ),
    ];
    for (key, value, reason) in cases {
        let mut cfg = good.clone();
        cfg[key] = value;
        let (ok, report) = check(&write(dir.path(), &cfg));
        assert!(!ok, "{key}: {report}");
        let fail = report
            .lines()
            .find(|l| l.trim_start().starts_with("FAIL"))
            .unwrap_or_else(|| panic!("{key}: no FAIL line: {report}"));
        assert!(fail.contains(reason), "{key}: `{reason}` not in `{fail}`");
    }
}

#[test]
fn an_unreadable_file_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("distributor-config.json");
    std::fs::write(&path, "{ not json").unwrap();
    let (ok, report) = check(&path);
    assert!(!ok);
    assert!(report.contains("FAIL  config"), "{report}");
}
