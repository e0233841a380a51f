//! The machine side of a run: the fd limit, a process's memory, server processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Raises the soft limit of open files towards `want` (at most the hard limit); returns the
/// limit now in force. Every socket is a file: 10,000 collectors need more than the usual 1024.
pub fn raise_fd_limit(want: u64) -> u64 {
    match rlimit::increase_nofile_limit(want) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024),
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcMem {
    /// Resident set now (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident set (VmHWM), KiB.
    pub peak_kib: u64,
}

impl ProcMem {
    /// Reads `pid`'s memory; `None` if the process is gone or not readable.
    pub fn read(pid: u32) -> Option<Self> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            s.lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

/// CPU time a process has used (user + system), from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcCpu {
    /// Seconds of CPU, at the kernel's tick resolution (10 ms).
    pub secs: f64,
}

impl ProcCpu {
    /// Reads `pid`'s CPU time; `None` if the process is gone or not readable.
    pub fn read(pid: u32) -> Option<Self> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(Self {
            secs: Self::parse(&s)?,
        })
    }

    /// utime + stime of a `stat` line, in seconds.
    fn parse(stat: &str) -> Option<f64> {
        // The command name (field 2) may hold spaces: count fields after its `)`.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut f = rest.split_whitespace().skip(11);
        let utime: u64 = f.next()?.parse().ok()?;
        let stime: u64 = f.next()?.parse().ok()?;
        // USER_HZ is 100 on Linux, whatever the kernel's own tick rate.
        Some((utime + stime) as f64 / 100.0)
    }

    /// CPU time of this process's threads named `name` (a runtime's workers), from
    /// `/proc/self/task/<tid>/stat`; `None` if there are none.
    pub fn threads(name: &str) -> Option<Self> {
        let mut secs = None;
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            // A thread that ended meanwhile no longer counts.
            let Some(used) = std::fs::read_to_string(path.join("stat"))
                .ok()
                .and_then(|stat| Self::parse(&stat))
            else {
                continue;
            };
            *secs.get_or_insert(0.0) += used;
        }
        secs.map(|secs| Self { secs })
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Finds a workspace binary: `explicit` if given, else `name` beside this executable
/// (cargo puts every binary of the workspace in the same `target/<profile>/`).
pub fn find_bin(name: &str, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "{}: no such file", p.display());
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe().context("current executable")?;
    let dir = exe.parent().context("executable has no directory")?;
    let p = dir.join(name);
    anyhow::ensure!(
        p.is_file(),
        "{name} not found beside {}: build it with `cargo build --release --bins` or pass --server-bin",
        exe.display()
    );
    Ok(p)
}

/// Starts `firehose-distributor` (`bin`, or the one beside the bench) on a free loopback port
/// with `cfg` written as its config file in `dir`; returns it once it listens, and its
/// `ws://` URL. Its own logs are warnings only.
pub fn spawn_distributor(
    bin: Option<&Path>,
    dir: &Path,
    mut cfg: firehose_distributor::Config,
) -> anyhow::Result<(ServerProcess, String)> {
    let bin = find_bin("firehose-distributor", bin)?;
    cfg.ip = "127.0.0.1".into();
    cfg.port = free_port()?;
    let path = dir.join("distributor-config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--config")
        .arg(&path)
        .args(["--log-level", "warn"])
        .stdout(Stdio::null());
    let mut server = ServerProcess::spawn(cmd)?;
    let addr = format!("127.0.0.1:{}", cfg.port);
    server.wait_listening(&addr, Duration::from_secs(20))?;
    Ok((server, format!("ws://{addr}")))
}

/// A server started by the bench; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Starts `cmd` with stderr discarded unless `FIREHOSE_BENCH_SERVER_LOGS` is set.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        if std::env::var_os("FIREHOSE_BENCH_SERVER_LOGS").is_none() {
            cmd.stderr(Stdio::null());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        Ok(Self { child })
    }

    /// The process id (for [`ProcMem::read`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server as an operator does (SIGTERM), waiting up to `timeout` for it to exit
    /// (then it is killed).
    pub fn terminate(mut self, timeout: Duration) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + timeout;
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not exit within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The child's stdout, if it was piped (taken once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits until `addr` accepts TCP connections, failing early if the process exited.
    pub fn wait_listening(&mut self, addr: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the server exited before listening on {addr}: {status}");
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server is not listening on {addr} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_and_fd_limit() {
        let m = ProcMem::read(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib);
        assert!(ProcMem::read(u32::MAX).is_none());
        assert!(raise_fd_limit(256) >= 256);
    }
}
