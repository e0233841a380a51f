//! The `firehose-distributor` binary as a process: config file, SIGUSR1 reload, SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firehose_client::{Client, ClientConfig, ClientError, Subscription};
use firehose_core::crypto::KeyPair;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::config::DEV_PUBLIC_KEY;
use firehose_sim::ArchiverSim;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(
    path: &std::path::Path,
    logs: &std::path::Path,
    port: u16,
    subscribers: serde_json::Value,
) {
    let cfg = json!({
        "DISTRIBUTOR_PORT": port,
        "DATA_LOG_DIR": logs,
        "limitToSubscribersOnly": true,
        "subscribers": subscribers,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

async fn connect(cfg: &ClientConfig) -> Subscription {
    for _ in 0..200 {
        if let Ok(s) = Client::connect(cfg).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("distributor did not start");
}

async fn expect_close(sub: &mut Subscription, code: u16) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("no close in time")
        {
            Some(Err(ClientError::Closed { code: c, .. })) => {
                assert_eq!(c, code);
                return;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reload_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(
        dir.path(),
        FixtureSpec {
            receipts_per_cycle: 2,
            txs_per_cycle: 2,
            receipt_bytes: 200,
            ..FixtureSpec::default()
        },
        100,
    )
    .unwrap();
    let port = free_port();
    let cfg_path = dir.path().join("distributor-config.json");
    let a = KeyPair::from_seed([1; 32]);
    let b = KeyPair::from_seed([2; 32]);
    let sub = |k: &KeyPair| json!({"publicKey": k.public_key().to_hex(), "expirationTimestamp": 0, "subscriptionType": "FIREHOSE"});
    write_config(&cfg_path, sim.log_dir(), port, json!([sub(&a), sub(&b)]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args([
            "--config",
            cfg_path.to_str().unwrap(),
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}");
    let dev = firehose_core::crypto::PublicKey::from_hex(DEV_PUBLIC_KEY).unwrap();
    let ca = ClientConfig::new(&url, a, dev);
    let cb = ClientConfig::new(&url, b, dev);
    let mut sa = connect(&ca).await;
    let mut sb = connect(&cb).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = sim.write_cycle().unwrap();
    for s in [&mut sa, &mut sb] {
        for _ in 0..written.len() {
            tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
    // Remove `a` from the file and signal: `a` is closed with 1001, `b` stays.
    write_config(&cfg_path, sim.log_dir(), port, json!([sub(&cb.keys)]));
    signal(&child, "-USR1");
    expect_close(&mut sa, 1001).await;
    let written = sim.write_cycle().unwrap();
    for _ in 0..written.len() {
        tokio::time::timeout(Duration::from_secs(10), sb.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    // SIGTERM: `b` is closed with 1001 and the process exits cleanly.
    signal(&child, "-TERM");
    expect_close(&mut sb, 1001).await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn refuses_to_start_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    // Writes `config`, starts the binary on it; it must fail: its stderr.
    let refused = |config: String| {
        std::fs::write(&cfg, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
            .args(["--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let logs = dir.path().display();
    let err = refused(r#"{"DATA_LOG_DIR": "/nonexistent/logs"}"#.into());
    assert!(err.contains("/nonexistent/logs"));
    let err = refused(format!(
        r#"{{"DATA_LOG_DIR": "{logs}", "DISTRIBUTOR_SECRET_KEY": "zz"}}"#
    ));
    assert!(err.contains("DISTRIBUTOR_SECRET_KEY"));
    // A misspelt security setting would leave the allow-list off: refused, with the fix.
    let err = refused(format!(
        r#"{{"DATA_LOG_DIR": "{logs}", "limitToSubscriberOnly": true}}"#
    ));
    assert!(
        err.contains("did you mean `limitToSubscribersOnly`")
            && err.contains("--allow-unknown-keys"),
        "{err}"
    );
    // Hostile numbers and unreadable security switches refuse the start, named.
    std::fs::write(&cfg, format!(r#"{{"DATA_LOG_DIR": "{logs}"}}"#)).unwrap();
    let run = |args: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"));
        cmd.args(["--config", cfg.to_str().unwrap()]).args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--CLIENT_QUEUE_CAPACITY", "18446744073709551615"], None);
    assert!(
        err.contains("CLIENT_QUEUE_CAPACITY") && err.contains("out of range"),
        "{err}"
    );
    let err = run(&[], Some(("limitToSubscribersOnly", "1")));
    assert!(err.contains("limitToSubscribersOnly=1"), "{err}");
    let err = run(&["--limitToSubscribersOnly", "yes"], None);
    assert!(err.contains("limitToSubscribersOnly=yes"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--config", "/nonexistent/c.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.json"));
}

/// An original deployment's settings: database files under other names (`ARCHIVER_DATA`),
/// the port as `--DISTRIBUTOR_PORT` (the original's argument form), booleans from the
/// environment in capitals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_settings_archiver_data_and_key_arguments() {
    use firehose_client::HttpClient;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let db = dir.path().join("db");
    let names = firehose_dbstore::StoreNames {
        cycles: "c.db".into(),
        receipts: "r.db".into(),
        original_txs: "o.db".into(),
        accounts: "a.db".into(),
        transactions: "t.db".into(),
    };
    let layout = firehose_dbstore::Layout::Named(db.clone(), names);
    let spec = FixtureSpec {
        cycles: 4,
        receipts_per_cycle: 2,
        ..FixtureSpec::default()
    };
    firehose_dbstore::fixture::build(&layout, &spec).unwrap();
    let cfg = dir.path().join("distributor-config.json");
    let file = json!({
        "DISTRIBUTOR_PORT": 1,
        "DATA_LOG_DIR": logs,
        "ARCHIVER_DB_DIR": db,
        "ARCHIVER_DATA": {"cycleDB": "c.db", "receiptDB": "r.db", "originalTxDataDB": "o.db",
            "accountDB": "a.db", "transactionDB": "t.db"},
        "limitToSubscribersOnly": false,
    });
    std::fs::write(&cfg, serde_json::to_vec(&file).unwrap()).unwrap();
    let port = free_port();
    let keys = KeyPair::from_seed([8; 32]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--DISTRIBUTOR_PORT", &port.to_string()])
        .env("limitToSubscribersOnly", "TRUE")
        .env(
            "subscribers",
            json!([{"publicKey": keys.public_key().to_hex(), "expirationTimestamp": 0,
                "subscriptionType": "FIREHOSE"}])
            .to_string(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dev = firehose_core::crypto::PublicKey::from_hex(DEV_PUBLIC_KEY).unwrap();
    let api = HttpClient::new(&format!("http://127.0.0.1:{port}"), keys, dev);
    let mut totals = None;
    for _ in 0..200 {
        if let Ok(t) = api.total_data().await {
            totals = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let totals = totals.expect("listening on --DISTRIBUTOR_PORT, subscriber allowed");
    assert_eq!((totals.cycles, totals.receipts), (4, 8));
    let stranger = HttpClient::new(
        &format!("http://127.0.0.1:{port}"),
        KeyPair::from_seed([9; 32]),
        dev,
    );
    assert!(
        stranger.total_data().await.is_err(),
        "limitToSubscribersOnly=TRUE from the environment is on"
    );
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

/// Whether the distributor lets `cfg` subscribe now (401 if not).
async fn admitted(cfg: &ClientConfig) -> bool {
    match Client::connect(cfg).await {
        Ok(_) => true,
        Err(ClientError::Ws(tokio_tungstenite::tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 401);
            false
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// `limitToSubscribersOnly=true` from the environment, or as `--limitToSubscribersOnly
/// true`, over a file that says false: a reload (SIGUSR1, or a changed file) keeps it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_environment_and_argument_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ArchiverSim::create(dir.path(), FixtureSpec::default(), 100).unwrap();
    let dev = firehose_core::crypto::PublicKey::from_hex(DEV_PUBLIC_KEY).unwrap();
    let (a, b) = (KeyPair::from_seed([31; 32]), KeyPair::from_seed([32; 32]));
    let sub = |k: &KeyPair| json!({"publicKey": k.public_key().to_hex(), "expirationTimestamp": 0, "subscriptionType": "FIREHOSE"});
    for via_env in [true, false] {
        let port = free_port();
        let cfg_path = dir.path().join("distributor-config.json");
        let write = |subs: serde_json::Value| {
            let cfg = json!({"DISTRIBUTOR_PORT": port, "DATA_LOG_DIR": sim.log_dir(),
                "limitToSubscribersOnly": false, "subscribers": subs});
            std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        };
        write(json!([sub(&a)]));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"));
        cmd.args([
            "--config",
            cfg_path.to_str().unwrap(),
            "--log-level",
            "warn",
        ]);
        if via_env {
            cmd.env("limitToSubscribersOnly", "true");
        } else {
            cmd.args(["--limitToSubscribersOnly", "true"]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("ws://127.0.0.1:{port}");
        let (ca, cb, cs) = (
            ClientConfig::new(&url, KeyPair::from_seed([31; 32]), dev),
            ClientConfig::new(&url, KeyPair::from_seed([32; 32]), dev),
            ClientConfig::new(&url, KeyPair::from_seed([33; 32]), dev),
        );
        drop(connect(&ca).await);
        assert!(!admitted(&cs).await, "allow-list on at start ({via_env})");
        // SIGUSR1 with `b` added: `b` gets in (the reload happened), the stranger does not.
        write(json!([sub(&a), sub(&b)]));
        signal(&child, "-USR1");
        let mut b_in = false;
        for _ in 0..100 {
            if admitted(&cb).await {
                b_in = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(b_in, "the reload applied the file's subscribers");
        assert!(
            !admitted(&cs).await,
            "allow-list still on after SIGUSR1 ({via_env})"
        );
        // A changed file (no signal), noticed at the next poll (2 s).
        write(json!([sub(&a)]));
        let mut b_out = false;
        for _ in 0..100 {
            if !admitted(&cb).await {
                b_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(b_out, "the changed file was reloaded");
        assert!(
            !admitted(&cs).await,
            "allow-list still on after a file change ({via_env})"
        );
        signal(&child, "-TERM");
        assert!(child.wait().unwrap().success());
    }
}
