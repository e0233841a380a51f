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

/// A started distributor, killed when dropped (a test that panics leaves no process behind).
pub struct Proc(pub Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the distributor binary `bin` (`env!("CARGO_BIN_EXE_firehose-distributor")` in the
/// distributor's tests) with `--config <cfg>` and `log_level`, output discarded.
pub fn start_binary(bin: &str, cfg: &std::path::Path, log_level: &str) -> Proc {
    Proc(
        Command::new(bin)
            .args(["--config", cfg.to_str().unwrap(), "--log-level", log_level])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Sends `sig` (`-KILL`, `-TERM`, `-USR1`) to `child`.
pub fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Writes `dir/distributor-config.json` for a distributor binary over `sim` on a free port
/// (the archiver's logs and database, resume state in `dir`, implicit resumes unpaced);
/// returns the file and the port.
pub fn sim_config(
    dir: &std::path::Path,
    sim: &firehose_sim::ArchiverSim,
) -> (std::path::PathBuf, u16) {
    let firehose_dbstore::Layout::Directory(db) = sim.layout().clone() else {
        panic!("the simulator writes a database directory")
    };
    let port = free_port();
    let cfg = dir.join("distributor-config.json");
    let file = serde_json::json!({
        "DISTRIBUTOR_PORT": port,
        "DATA_LOG_DIR": sim.log_dir(),
        "ARCHIVER_DB_DIR": db,
        "RESUME_STATE_FILE": dir.join("resume-state.json"),
        "IMPLICIT_RESUME_RATE": 0,
    });
    std::fs::write(&cfg, file.to_string()).unwrap();
    (cfg, port)
}
