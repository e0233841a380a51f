//! Output formats and the stdout writer.
//!
//! A format turns a block into whole lines ([`OutputFormat`]); the [`Writer`] is the only
//! owner of the output stream: it writes each block's lines whole and tells the sender when
//! they are safely out (only then is the block acked). On a pipe (how a Firehose reader runs
//! the connector) the lines are written by the runtime, non-blocking, with no hand-off to
//! another thread ([`Writer::pipe`]); any other output (a file, a terminal) is written by a
//! thread of its own ([`Writer::spawn`]).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::codec::BlockInfo;

/// A way to print blocks. Adding a format is one more implementation of this trait.
pub trait OutputFormat: Send + Sync + 'static {
    /// Lines printed once at start-up (may be empty).
    fn init(&self, out: &mut Vec<u8>);
    /// Appends the lines for one block (`payload` is the `OutportBlock` bytes as received).
    fn block(&self, info: &BlockInfo, payload: &[u8], out: &mut Vec<u8>);
    /// The most bytes [`OutputFormat::block`] appends for a payload of `payload_len` bytes
    /// (the memory budget reserves it; the default, hex and a header, is generous).
    fn line_bytes(&self, payload_len: usize) -> usize {
        payload_len.saturating_mul(2).saturating_add(1024)
    }
}

/// Converts the header's seconds to what the reader expects.
fn timestamp(info: &BlockInfo, nanos: bool) -> u64 {
    if nanos {
        info.timestamp.saturating_mul(1_000_000_000)
    } else {
        info.timestamp
    }
}

/// Firehose console-reader protocol 1.0 (the original's current format):
/// `FIRE INIT 1.0 type.googleapis.com/proto.OutportBlock`, then per block
/// `FIRE BLOCK <nonce> <hexhash> <parent> <hexprev> <lib> <timestamp> <base64 payload>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FirehoseFormat {
    /// Print the timestamp in nanoseconds, as firehose-core parses it (the original prints
    /// seconds: a documented defect, kept as the default for compatibility).
    pub timestamp_nanos: bool,
}

impl OutputFormat for FirehoseFormat {
    fn init(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"FIRE INIT 1.0 type.googleapis.com/proto.OutportBlock\n");
    }

    fn block(&self, info: &BlockInfo, payload: &[u8], out: &mut Vec<u8>) {
        let parent = info.nonce.saturating_sub(1);
        out.reserve(payload.len() * 4 / 3 + 256);
        let _ = write!(
            out,
            "FIRE BLOCK {} {} {} {} {} {} ",
            info.nonce,
            hex::encode(&info.hash),
            parent,
            hex::encode(&info.prev_hash),
            info.lib,
            timestamp(info, self.timestamp_nanos)
        );
        base64_into(payload, out);
        out.push(b'\n');
    }

    fn line_bytes(&self, payload_len: usize) -> usize {
        // Base64 plus the header: nonce, two hashes of at most 64 bytes each, numbers.
        payload_len
            .div_ceil(3)
            .saturating_mul(4)
            .saturating_add(1024)
    }
}

/// Payloads from this size on are encoded on two cores (below it, waking a second core costs
/// about what it saves: 1 MiB 76 µs either way; 4 MiB 316 -> 224 µs).
pub const PARALLEL_BASE64: usize = 2 << 20;

/// Appends the base64 of `payload` to `out`, encoded straight into the output buffer (no
/// intermediate string). A large payload is cut in two at a multiple of 3 bytes, where base64
/// output concatenates exactly, and the halves are encoded at once on rayon's pool.
fn base64_into(payload: &[u8], out: &mut Vec<u8>) {
    let b64 = base64_simd::STANDARD;
    let start = out.len();
    out.resize(start + b64.encoded_length(payload.len()), 0);
    let dst = &mut out[start..];
    let written = if payload.len() >= PARALLEL_BASE64 {
        let cut = payload.len() / 2 / 3 * 3;
        let (a, b) = payload.split_at(cut);
        let (da, db) = dst.split_at_mut(b64.encoded_length(cut));
        let (na, nb) = rayon::join(
            || b64.encode(a, base64_simd::Out::from_slice(da)).len(),
            || b64.encode(b, base64_simd::Out::from_slice(db)).len(),
        );
        na + nb
    } else {
        b64.encode(payload, base64_simd::Out::from_slice(dst)).len()
    };
    out.truncate(start + written);
}

/// The format the original shipped first:
/// `FIRE BLOCK_BEGIN <nonce>` and `FIRE BLOCK_END <nonce> <hexprev> <timestamp> <hexpayload>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LegacyFormat {
    /// Timestamp in nanoseconds instead of seconds.
    pub timestamp_nanos: bool,
}

impl OutputFormat for LegacyFormat {
    fn init(&self, _out: &mut Vec<u8>) {}

    fn block(&self, info: &BlockInfo, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(payload.len() * 2 + 128);
        let _ = writeln!(out, "FIRE BLOCK_BEGIN {}", info.nonce);
        let _ = writeln!(
            out,
            "FIRE BLOCK_END {} {} {} {}",
            info.nonce,
            hex::encode(&info.prev_hash),
            timestamp(info, self.timestamp_nanos),
            hex::encode(payload)
        );
    }
}

/// A request to write one block's lines.
struct Job {
    bytes: Vec<u8>,
    done: oneshot::Sender<std::io::Result<()>>,
    /// Its share of the queue's byte budget, given back once written.
    _room: tokio::sync::OwnedSemaphorePermit,
    /// What the caller holds for these bytes (its memory budget), kept until written.
    _held: Held,
}

/// Kept alive until a write is done: the caller's reservation of the memory the lines use.
pub type Held = Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>;

/// Handle on the output; cheap to clone, one per connection.
#[derive(Clone, Debug)]
pub struct Writer {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    /// A thread owns the output.
    Thread {
        tx: mpsc::Sender<Job>,
        /// Bytes queued for the output at once ([`QUEUE_BYTES`]): blocks waiting on a slow
        /// output hold at most this much between them.
        budget: Arc<tokio::sync::Semaphore>,
    },
    /// A non-blocking pipe, one block's lines at a time.
    Pipe(Arc<PipeOut>),
}

#[derive(Debug)]
struct PipeOut {
    pipe: tokio::sync::Mutex<pipe::Sender>,
    /// Set once the reader has gone (broken pipe).
    closed: AtomicBool,
}

/// Bytes of lines queued for the output at once (a larger block waits until the queue is
/// empty, then goes alone).
pub const QUEUE_BYTES: usize = 256 << 20;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} bytes)", self.bytes.len())
    }
}

/// Why a block was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// The writer has stopped (shutdown, or the output closed).
    #[error("the output writer has stopped")]
    Stopped,
}

impl Writer {
    /// Starts the writer thread on `out`, writing `init` first. The thread ends when every
    /// handle is dropped, or after the output fails with a broken pipe.
    pub fn spawn<W: Write + Send + 'static>(
        mut out: W,
        init: Vec<u8>,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        if !init.is_empty() {
            out.write_all(&init)?;
            out.flush()?;
        }
        let (tx, mut rx) = mpsc::channel::<Job>(64);
        let handle = std::thread::Builder::new()
            .name("fire-writer".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    let res = out.write_all(&job.bytes).and_then(|_| out.flush());
                    let broken =
                        matches!(&res, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
                    let _ = job.done.send(res);
                    if broken {
                        tracing::info!("stdout closed (broken pipe); stopping");
                        return;
                    }
                }
            })?;
        let budget = Arc::new(tokio::sync::Semaphore::new(QUEUE_BYTES));
        let inner = Inner::Thread { tx, budget };
        Ok((Writer { inner }, handle))
    }

    /// Writes to the pipe `fd` (the write end of a FIFO) from the runtime: `init` first, then
    /// each block's lines whole, in non-blocking writes that wait for the reader without
    /// holding a thread. Call it inside a tokio runtime. Fails if `fd` is not a pipe.
    ///
    /// The pipe's write end becomes non-blocking for every process that shares it (the flag
    /// belongs to the open pipe, not to this descriptor); a Firehose reader holds only the
    /// read end.
    pub fn pipe(fd: OwnedFd, init: Vec<u8>) -> std::io::Result<Writer> {
        let mut file = std::fs::File::from(fd);
        enlarge_pipe(&file);
        if !init.is_empty() {
            file.write_all(&init)?;
        }
        // From here on the descriptor is non-blocking (tokio sets it).
        let pipe = pipe::Sender::from_file(file)?;
        Ok(Writer {
            inner: Inner::Pipe(Arc::new(PipeOut {
                pipe: tokio::sync::Mutex::new(pipe),
                closed: AtomicBool::new(false),
            })),
        })
    }

    /// The writer for this process's stdout: [`Writer::pipe`] when stdout is a pipe, else a
    /// writer thread ([`Writer::spawn`], whose handle is returned). Call it inside a tokio
    /// runtime.
    pub fn stdout(init: Vec<u8>) -> std::io::Result<(Writer, Option<std::thread::JoinHandle<()>>)> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        let out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
        if out.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
            return Ok((Writer::pipe(out.into(), init)?, None));
        }
        let (w, thread) = Writer::spawn(std::io::stdout(), init)?;
        Ok((w, Some(thread)))
    }

    /// Writes one block's lines and waits until they are written and flushed.
    pub async fn write(&self, bytes: Vec<u8>) -> Result<(), WriteError> {
        self.write_holding(bytes, None).await
    }

    /// [`Writer::write`], keeping `held` until the lines are written, even if the caller stops
    /// waiting (the lines are always written whole): the memory they use stays counted.
    pub async fn write_holding(&self, bytes: Vec<u8>, held: Held) -> Result<(), WriteError> {
        let (tx, budget) = match &self.inner {
            Inner::Thread { tx, budget } => (tx, budget),
            Inner::Pipe(out) => return write_pipe(out, bytes, held).await,
        };
        let (done, wait) = oneshot::channel();
        let need = u32::try_from(bytes.len().clamp(1, QUEUE_BYTES)).unwrap_or(u32::MAX);
        let room = budget
            .clone()
            .acquire_many_owned(need)
            .await
            .map_err(|_| WriteError::Stopped)?;
        tx.send(Job {
            bytes,
            done,
            _room: room,
            _held: held,
        })
        .await
        .map_err(|_| WriteError::Stopped)?;
        wait.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Io)
    }

    /// Waits until the lines already handed over are written (a pipe's writes run as tasks,
    /// which a runtime shutting down would cut short), then refuses more. A thread writer
    /// finishes on its own once every handle is dropped: join its thread.
    pub async fn finish(&self) {
        if let Inner::Pipe(out) = &self.inner {
            // The lock is fair: every write queued before this one goes first.
            let _pipe = out.pipe.lock().await;
            out.closed.store(true, Ordering::Relaxed);
        }
    }

    /// True once the writer has stopped (its thread ended, or the pipe's reader went away).
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Inner::Thread { tx, .. } => tx.is_closed(),
            Inner::Pipe(out) => out.closed.load(Ordering::Relaxed),
        }
    }
}

/// Raises a pipe's buffer from Linux's 64 KiB towards the system's `pipe-max-size` (1 MiB by
/// default): a 64 KiB block's line (87 KB of base64) then goes in one write, and a large one
/// in a few, instead of a wake-up of the reader and of the writer per 64 KiB. Best effort.
fn enlarge_pipe(file: &std::fs::File) {
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1 << 20);
    let want = max.min(PIPE_BYTES);
    match rustix::pipe::fcntl_setpipe_size(file, want) {
        Ok(size) => tracing::debug!(size, "stdout pipe buffer"),
        Err(e) => tracing::debug!(error = %e, "could not enlarge the stdout pipe"),
    }
}

/// The pipe buffer asked for (at most the system's limit).
pub const PIPE_BYTES: usize = 1 << 20;

/// Writes one block's lines to the pipe. The write runs as a task of its own: if the caller
/// stops waiting (its observer went away), the lines are still written whole, never cut.
async fn write_pipe(out: &Arc<PipeOut>, bytes: Vec<u8>, held: Held) -> Result<(), WriteError> {
    if out.closed.load(Ordering::Relaxed) {
        return Err(WriteError::Stopped);
    }
    let out = out.clone();
    let task = tokio::spawn(async move {
        let _held = held;
        let mut pipe = out.pipe.lock().await;
        let res = pipe.write_all(&bytes).await;
        let broken = matches!(&res, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
        if broken && !out.closed.swap(true, Ordering::Relaxed) {
            tracing::info!("stdout closed (broken pipe); stopping");
        }
        res
    });
    match task.await {
        Ok(res) => res.map_err(WriteError::Io),
        Err(_) => Err(WriteError::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn base64_in_two_halves_is_the_same_text() {
        for len in [
            0,
            1,
            2,
            3,
            PARALLEL_BASE64 - 1,
            PARALLEL_BASE64,
            PARALLEL_BASE64 + 1,
            PARALLEL_BASE64 + 2,
            (3 << 20) + 1,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
            let mut out = b"prefix ".to_vec();
            base64_into(&payload, &mut out);
            let want = base64::engine::general_purpose::STANDARD.encode(&payload);
            assert_eq!(&out[7..], want.as_bytes(), "{len} bytes");
        }
    }
}
