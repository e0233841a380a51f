//! The distributor binary as a process: a free port, starting it on a config file, signals.

use std::process::{Child, Command, Stdio};

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `firehose-distributor --config <cfg>` with `log_level`, output discarded (in this
/// crate's tests, which cargo gives the binary's path).
pub fn start_binary(cfg: &std::path::Path, log_level: &str) -> Child {
    let Some(bin) = option_env!("CARGO_BIN_EXE_firehose-distributor") else {
        panic!("the distributor binary is built for firehose-distributor's own tests only");
    };
    Command::new(bin)
        .args(["--config", cfg.to_str().unwrap(), "--log-level", log_level])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends `sig` (`-KILL`, `-TERM`, `-USR1`) to `child`.
pub fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}
