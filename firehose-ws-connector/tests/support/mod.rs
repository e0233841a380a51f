//! What the binary suites share: a free port, the connector started as a process in server
//! mode, and a simulated observer connected to it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firehose_sim::observer::Observer;
use firehose_ws_connector::Marshaller;

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `firehose-ws-connector --mode server --url 127.0.0.1:<port> <extra>`, stdout piped and
/// stderr as given (a piped stderr must be drained).
pub fn spawn(port: u16, extra: &[&str], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_firehose-ws-connector"))
        .args(["--mode", "server", "--url", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// An observer on the connector at `port`, once it listens (10 s at most), waiting 10 s for
/// each ack.
pub async fn connect(
    port: u16,
) -> Observer<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    for _ in 0..400 {
        if let Ok((ws, _)) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/save")).await
        {
            let mut o = Observer::new(ws, Marshaller::Protobuf);
            o.ack_timeout = Duration::from_secs(10);
            return o;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("connector did not start");
}
