//! `firehose keygen` and `firehose tail` against the demo distributor (a real process on
//! loopback): a listed key, a refused key, a foreign signature, fail-over.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn keygen_never_overwrites_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = keygen(dir.path(), "k.json");
    let before = std::fs::read(&path).unwrap();
    let out = firehose(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("never overwritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn tail_prints_verified_records_and_stops_on_refusal_or_a_foreign_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "listed.json");
    let (unlisted, _) = keygen(dir.path(), "unlisted.json");
    let demo = Demo::start(dir.path(), &public);
    let key = key.to_str().unwrap();
    let ws = demo.ws();

    // From cycle 3 on (cycle 3 included), cycles only: consecutive counters.
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        key,
        "--since",
        "3",
        "--types",
        "cycle",
        "--count",
        "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counters: Vec<u64> = stdout_lines(&out)
        .iter()
        .map(|l| l["cycle"]["counter"].as_u64().expect("a cycle line"))
        .collect();
    assert_eq!(counters, [3, 4, 5, 6, 7]);

    // Receipts, in MessagePack frames, with a dead distributor first to fail over from.
    let dead = format!("ws://127.0.0.1:{}", free_port());
    let urls = format!("{dead},{ws}");
    let out = firehose(&[
        "tail",
        "--url",
        &urls,
        "--key-file",
        key,
        "--since",
        "0",
        "--types",
        "receipt",
        "--count",
        "3",
        "--msgpack",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines.iter().all(|l| l["receipt"]["receiptId"].is_string()),
        "{lines:?}"
    );

    // A key that is not on the allow-list: refused, with the reason.
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        unlisted.to_str().unwrap(),
        "--count",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("refused the subscription") && err.contains("401"),
        "{err}"
    );

    // Messages signed by another key than the one we trust.
    let other = "ab".repeat(32);
    let out = firehose(&[
        "tail",
        "--url",
        &ws,
        "--key-file",
        key,
        "--since",
        "0",
        "--count",
        "1",
        "--distributor-key",
        &other,
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("not by the distributor key"),
        "{}",
        stderr(&out)
    );
}

/// The first counter `tail ARGS --types cycle --count N` prints, and the last.
fn cycles(ws: &str, key: &str, extra: &[&str], count: &str) -> (u64, u64) {
    let mut args = vec![
        "tail",
        "--url",
        ws,
        "--key-file",
        key,
        "--types",
        "cycle",
        "--count",
        count,
    ];
    args.extend_from_slice(extra);
    let out = firehose(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let counters: Vec<u64> = stdout_lines(&out)
        .iter()
        .map(|l| l["cycle"]["counter"].as_u64().expect("a cycle line"))
        .collect();
    (counters[0], *counters.last().unwrap())
}

/// `tail` is live by default (the same key run again does not replay from where the last
/// run ended), `--resume` takes the remembered point (where the key's unbroken history ends), and `--since N` starts every type at
/// cycle N.
#[test]
fn tail_is_live_by_default_resumes_on_request_and_since_covers_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "listed.json");
    let demo = Demo::start(dir.path(), &public);
    let key = key.to_str().unwrap();
    let ws = demo.ws();
    // The demo writes 20 cycles a second.
    let (_, first_end) = cycles(&ws, key, &[], "3");
    std::thread::sleep(Duration::from_secs(2));
    let (live, _) = cycles(&ws, key, &[], "1");
    assert!(
        live > first_end + 5,
        "a second run is live ({live}), not a replay from {first_end}"
    );
    // A live run that started after the key's point does not move it (that would skip
    // what lies between): --resume goes on from where the first run ended.
    std::thread::sleep(Duration::from_secs(2));
    let (resumed, _) = cycles(&ws, key, &["--resume"], "1");
    assert!(
        resumed > first_end && resumed <= first_end + 5,
        "--resume goes on from where the unbroken history ended ({first_end}), got {resumed}"
    );
    for t in ["receipt", "originalTx"] {
        let out = firehose(&[
            "tail",
            "--url",
            &ws,
            "--key-file",
            key,
            "--since",
            "2",
            "--types",
            t,
            "--count",
            "1",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = stdout_lines(&out);
        assert_eq!(
            lines[0][t]["cycle"].as_u64(),
            Some(2),
            "--since 2 --types {t}: {lines:?}"
        );
    }
}
