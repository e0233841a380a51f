//! The `firehose-ws-connector` binary as a process: stdout carries only FIRE lines, SIGTERM
//! and a closed stdout end it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firehose_sim::observer::{block_payload, HeaderKind};

mod support;

use support::{connect, free_port, spawn};

/// Drains both pipes while the connector runs (a full pipe would stall it, as it should):
/// the stdout lines and the stderr text, once the process has ended.
fn drain(
    child: &mut Child,
) -> (
    std::thread::JoinHandle<Vec<String>>,
    std::thread::JoinHandle<String>,
) {
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            .collect::<Vec<String>>()
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    (out, err)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn stdout_has_only_fire_lines_and_sigterm_exits_cleanly() {
    let port = free_port();
    let mut child = spawn(
        port,
        &["--log-level", "debug", "--timestamp-nanos"],
        Stdio::piped(),
    );
    let (out, err) = drain(&mut child);
    let mut o = connect(port).await;
    for nonce in 1..=20 {
        o.send_block(block_payload(HeaderKind::Header, 0, nonce, 3000), true)
            .await
            .unwrap();
    }
    o.close().await;
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let lines = out.join().unwrap();
    assert_eq!(lines.len(), 21);
    assert!(lines.iter().all(|l| l.starts_with("FIRE ")));
    assert!(
        lines[1].split(' ').nth(7).unwrap().ends_with("000000000"),
        "nanoseconds"
    );
    let err = err.join().unwrap();
    assert!(err.contains("SIGTERM"), "logs go to stderr: {err}");
}

#[tokio::test]
async fn closed_stdout_is_a_clean_exit_and_the_block_is_not_acked() {
    let port = free_port();
    let mut child = spawn(port, &["--log-level", "debug"], Stdio::piped());
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut o = connect(port).await;
    o.send_block(block_payload(HeaderKind::Header, 0, 1, 100), true)
        .await
        .unwrap();
    // The reader goes away.
    drop(child.stdout.take());
    o.ack_timeout = Duration::from_millis(500);
    o.max_resends = 0;
    let r = o
        .send_block(block_payload(HeaderKind::Header, 0, 2, 100), true)
        .await;
    assert!(
        r.is_err(),
        "a block that could not be written must not be acked"
    );
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("connector exits when stdout is closed");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_flags_and_config_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .args(["--config", "/nonexistent/config.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.toml"));
    let out = Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .args(["--mode", "sideways"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let help = Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--output-format"));
}

/// The original's deployment: a `config/config.toml` in the working directory and no
/// arguments. The connector listens where the file says, and its ack for counter 1 is the
/// original's bytes `10 01 18 01` (Counter and Type, no Version).
#[tokio::test]
async fn starts_from_config_toml_in_the_working_directory_and_acks_like_the_original() {
    use futures::{SinkExt, StreamExt};
    use prost::Message as _;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/config.toml"),
        format!("[web_socket]\nurl = \"127.0.0.1:{port}\"\nmarshaller_type = \"gogo protobuf\"\nmode = \"server\"\nretry_duration = 5\nwith_acknowledge = true\nacknowledge_timeout_in_sec = 5\nblocking_ack_on_error = true\ndrop_messages_if_no_connection = false\nversion = 1\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .args([
            "--log-save",
            "--disable-ansi-color",
            "--log-level",
            "*:DEBUG,process:TRACE",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = drain(&mut child);
    let mut ws = None;
    for _ in 0..200 {
        if let Ok((s, _)) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/save")).await
        {
            ws = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut ws = ws.expect("the connector listens where config/config.toml says");
    let envelope = firehose_ws_connector::proto::WsMessage {
        with_acknowledge: true,
        counter: 1,
        r#type: firehose_ws_connector::proto::TYPE_PAYLOAD,
        payload: block_payload(HeaderKind::Header, 0, 1, 100),
        topic: "SaveBlock".into(),
        version: 1,
    };
    ws.send(Message::Binary(envelope.encode_to_vec().into()))
        .await
        .unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an ack")
        .unwrap()
        .unwrap();
    assert_eq!(ack.into_data().as_ref(), [0x10, 0x01, 0x18, 0x01]);
    drop(ws);
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let lines = out.join().unwrap();
    assert_eq!(lines.len(), 2, "INIT and one block: {lines:?}");
    let err = err.join().unwrap();
    assert!(
        err.contains("config/config.toml") && !err.contains("\x1b["),
        "{err}"
    );
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = logs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("ws-connector-firehose-") && name.ends_with(".log"),
        "{name}"
    );
    let saved = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        saved.contains("SIGTERM") && saved.contains("DEBUG"),
        "debug logs saved: {saved}"
    );
}
