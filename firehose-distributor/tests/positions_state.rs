//! The remembered resume points on disk and in memory: a SIGKILL in the middle of a save
//! leaves the old or the new file, a corrupt file is reported and the distributor starts
//! anyway, and the number of keys stays within its cap however many collectors come.

use firehose_testkit as common;

use std::process::{Command, Stdio};
use std::time::Duration;

use firehose_core::crypto::{KeyPair, PublicKey};
use firehose_core::since::Since;
use firehose_distributor::backfill::positions::Positions;
use firehose_distributor::backfill::positions_file;

const WRITER: &str = "FIREHOSE_TEST_STATE_WRITER";
const KEYS: usize = 20_000;

/// In the child: saves a state of `KEYS` points to the given file, over and over.
fn write_forever(path: &str) -> ! {
    let p = Positions::new(KEYS);
    for i in 0..KEYS as u64 {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.to_le_bytes());
        let since = Since {
            cycle: Some(i),
            ..Since::default()
        };
        p.set(PublicKey(k), since, true);
    }
    loop {
        positions_file::save(std::path::Path::new(path), &p).unwrap();
    }
}

#[test]
fn a_sigkill_during_saves_leaves_a_whole_state() {
    if let Ok(path) = std::env::var(WRITER) {
        write_forever(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume-state.json");
    let mut loaded = 0;
    for round in 0..12u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["a_sigkill_during_saves_leaves_a_whole_state", "--exact"])
            .env(WRITER, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Once the first save is there, the kill lands at some point of a later one.
        for _ in 0..2000 {
            if path.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(round * 37 % 100));
        assert!(Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        child.wait().unwrap();
        let p = Positions::new(KEYS);
        let n = positions_file::load(&path, &p);
        assert!(
            n == KEYS || (n == 0 && !path.exists()),
            "round {round}: {n} points"
        );
        loaded += usize::from(n == KEYS);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("corrupt")),
            "round {round}: a torn state file: {names:?}"
        );
    }
    assert_eq!(loaded, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_reported_and_the_distributor_starts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let state = dir.path().join("resume-state.json");
    std::fs::write(&state, b"{\"version\":1,\"positions\":[{\"key\":\"zz").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("c.json");
    let file = serde_json::json!({"DISTRIBUTOR_PORT": port, "DATA_LOG_DIR": logs,
        "RESUME_STATE_FILE": state});
    std::fs::write(&cfg, file.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_firehose-distributor"))
        .args(["--config", cfg.to_str().unwrap(), "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(up, "the distributor started: {stderr}");
    assert!(stderr.contains("resume state unreadable"), "{stderr}");
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("resume-state.json.corrupt-")
        })
        .count();
    assert_eq!(aside, 1, "the damaged file is kept aside for the operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_number_of_remembered_keys_is_capped() {
    // Real subscriptions from 300 distinct keys, with the allow-list off and a cap of 100.
    let run = common::run::start(common::run::spec(256), 1000, |c| {
        c.resume_max_keys = 100;
    })
    .await;
    for seed in 0..300u32 {
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&seed.to_le_bytes());
        let cfg =
            firehose_client::ClientConfig::new(&run.url, KeyPair::from_seed(s), run.d.public_key());
        drop(firehose_client::Client::connect(&cfg).await.unwrap());
    }
    assert!(run.d.positions().len() <= 100);
    // 100,000 more, straight into the store: the cap holds, evictions are counted.
    for i in 0..100_000u64 {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.to_le_bytes());
        run.d.remember(PublicKey(k), &Since::default(), true);
    }
    assert_eq!(run.d.positions().len(), 100);
    let metrics = common::get(&run.url, "/metrics").await;
    let evicted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("firehose_distributor_resume_positions_evicted_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(evicted >= 100_000 + 200 - 100, "{evicted}");
    assert!(metrics.contains("firehose_distributor_resume_positions 100\n"));
}
