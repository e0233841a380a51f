//! `distributor-config.json`, environment and `--KEY value` arguments read as the original
//! reads them.

use firehose_dbstore::{Layout, StoreNames};
use firehose_distributor::config::Config;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn environment_booleans_any_case_numbers_and_json() {
    let mut c = Config::default();
    let env = |k: &str| match k {
        "limitToSubscribersOnly" => Some("TRUE".to_owned()),
        "VERBOSE" => Some("yes".to_owned()),
        "DISTRIBUTOR_PORT" => Some("6200".to_owned()),
        "ARCHIVER_DB_DIR" => Some("/db".to_owned()),
        "ARCHIVER_DATA" => Some(r#"{"cycleDB":"c.db"}"#.to_owned()),
        "subscribers" => Some(
            r#"[{"publicKey":"aa","expirationTimestamp":0,"subscriptionType":"BLOCKS"}]"#
                .to_owned(),
        ),
        _ => None,
    };
    c.apply_env(env).unwrap();
    assert!(c.limit_to_subscribers_only, "TRUE is true");
    assert!(!c.verbose, "anything but true is false, as in the original");
    assert_eq!(c.port, 6200);
    assert_eq!(
        c.subscribers[0].subscription_type, "BLOCKS",
        "unknown types load"
    );
    let Some(Layout::Named(dir, names)) = c.layout() else {
        panic!("{:?}", c.layout())
    };
    assert_eq!(dir, std::path::Path::new("/db"));
    assert_eq!(names.cycles, "c.db");
    assert_eq!(names.receipts, StoreNames::default().receipts);
    let mut bad = Config::default();
    let e = bad
        .apply_env(|k| (k == "DISTRIBUTOR_PORT").then(|| "many".to_owned()))
        .unwrap_err();
    assert!(e.to_string().contains("DISTRIBUTOR_PORT=many"), "{e}");
}

#[test]
fn key_arguments_are_taken_out_and_applied() {
    let (pairs, rest) = Config::split_args(args(&[
        "firehose-distributor",
        "--DISTRIBUTOR_PORT",
        "6300",
        "--limitToSubscribersOnly",
        "--port",
        "7000",
        "--VERBOSE=TRUE",
        "--DATA_LOG_DIR",
        "/logs",
        "serve",
    ]));
    assert_eq!(
        rest,
        args(&["firehose-distributor", "--port", "7000", "serve"])
    );
    let mut c = Config::default();
    c.apply_overrides(&pairs, "command line").unwrap();
    assert_eq!(c.port, 6300);
    assert!(c.limit_to_subscribers_only && c.verbose);
    assert_eq!(c.data_log_dir, std::path::Path::new("/logs"));
}

#[test]
fn mode_from_the_file_and_no_logs_needed_in_mq_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(
        &path,
        r#"{"distributorMode": "mq", "DATA_LOG_DIR": "/nonexistent", "ARCHIVER_DB_DIR": "/db",
            "ARCHIVER_DATA": {"cycleDB": "cycles.sqlite3", "receiptDB": "r.sqlite3"},
            "NUMBER_OF_WORKERS": 5, "MAX_CLIENTS_PER_CHILD": 2}"#,
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    assert!(c.is_mq());
    c.validate().expect("MQ mode does not read the data logs");
    let ws = Config {
        distributor_mode: Some("WS".into()),
        ..c.clone()
    };
    assert!(ws
        .validate()
        .unwrap_err()
        .to_string()
        .contains("/nonexistent"));
    let odd = Config {
        distributor_mode: Some("both".into()),
        ..c
    };
    assert!(odd
        .validate()
        .unwrap_err()
        .to_string()
        .contains("distributorMode"));
}

/// Switching over from the original in MQ mode: with no state file of ours yet, publishing
/// starts at the original's checkpoint (`db/checkpoints.db`), not at cycle 0; once our state
/// file exists, it wins.
#[test]
fn mq_starts_from_the_originals_checkpoint() {
    use firehose_distributor::mq::publisher::Publisher;
    use firehose_distributor::mq::MqConfig;
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::Directory(dir.path().join("archiver"));
    firehose_dbstore::fixture::build(&layout, &firehose_dbstore::fixture::FixtureSpec::default())
        .unwrap();
    let checkpoints = dir.path().join("checkpoints.db");
    let c = rusqlite::Connection::open(&checkpoints).unwrap();
    c.execute_batch(
        "CREATE TABLE data_publish_checkpoints(id integer, data_type varchar NOT NULL, mode string NOT NULL, cursor string NOT NULL, PRIMARY KEY (id));
         INSERT INTO data_publish_checkpoints (data_type, mode, cursor) VALUES ('cycle', 'WS', '3');
         INSERT INTO data_publish_checkpoints (data_type, mode, cursor) VALUES ('cycle', 'MQ', '42');",
    )
    .unwrap();
    let mut mq = MqConfig::from_env(|_| None, dir.path()).unwrap();
    assert_eq!(
        mq.original_checkpoint.as_deref(),
        Some(std::path::Path::new("db/checkpoints.db"))
    );
    mq.original_checkpoint = Some(checkpoints);
    let cfg = Config::default();
    let open = || firehose_dbstore::ArchiverDb::open(&layout).unwrap();
    let p = Publisher::new(
        mq.clone(),
        open(),
        cfg.crypto().unwrap(),
        cfg.keys().unwrap(),
    )
    .unwrap();
    assert_eq!(
        p.cursor().through,
        Some(41),
        "cycles before the original's cursor are settled"
    );
    std::fs::write(
        &mq.state_file,
        r#"{"version":1,"through":7,"updatedAtMs":0}"#,
    )
    .unwrap();
    let p = Publisher::new(mq, open(), cfg.crypto().unwrap(), cfg.keys().unwrap()).unwrap();
    assert_eq!(p.cursor().through, Some(7), "our own state file wins");
}

#[test]
fn a_security_switch_refuses_what_it_cannot_read() {
    for text in ["1", "yes", "on", "ture"] {
        let mut c = Config::default();
        let e = c
            .apply_env(|k| (k == "limitToSubscribersOnly").then(|| text.to_owned()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("limitToSubscribersOnly={text}")) && e.contains("security"),
            "{e}"
        );
        let mut c = Config::default();
        let args = [("limitToSubscribersOnly".to_owned(), text.to_owned())];
        assert!(c.apply_overrides(&args, "command line").is_err());
    }
    let mut c = Config::default();
    c.apply_env(|k| (k == "limitToSubscribersOnly").then(|| " False ".to_owned()))
        .unwrap();
    assert!(!c.limit_to_subscribers_only);
}

#[test]
fn numeric_settings_are_range_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("CLIENT_QUEUE_CAPACITY", "18446744073709551615"),
        ("CLIENT_QUEUE_CAPACITY", "0"),
        ("MAX_PENDING_CONNECTIONS", "0"),
        ("HEADER_READ_TIMEOUT_MS", "0"),
        ("MAX_LOG_LINE_BYTES", "18446744073709551615"),
        ("BACKFILL_SEND_TIMEOUT_MS", "18446744073709551615"),
    ] {
        let mut c = Config {
            data_log_dir: dir.path().to_owned(),
            ..Config::default()
        };
        c.apply_overrides(&[(key.to_owned(), value.to_owned())], "command line")
            .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("out of range"), "{e}");
    }
}
