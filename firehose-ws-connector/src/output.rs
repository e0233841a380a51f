//! Output formats and the stdout writer.
//!
//! A format turns a block into whole lines ([`OutputFormat`]); the [`Writer`] is the only
//! owner of the output stream: it writes each block's lines in one write and flushes, on its
//! own thread, and tells the sender when the block is safely out (only then is it acked).

use std::io::Write;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::codec::BlockInfo;

/// A way to print blocks. Adding a format is one more implementation of this trait.
pub trait OutputFormat: Send + Sync + 'static {
    /// Lines printed once at start-up (may be empty).
    fn init(&self, out: &mut Vec<u8>);
    /// Appends the lines for one block (`payload` is the `OutportBlock` bytes as received).
    fn block(&self, info: &BlockInfo, payload: &[u8], out: &mut Vec<u8>);
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
        // Encode straight into the output buffer: no intermediate string for large blocks.
        let start = out.len();
        let b64 = base64_simd::STANDARD;
        out.resize(start + b64.encoded_length(payload.len()), 0);
        let written = b64
            .encode(payload, base64_simd::Out::from_slice(&mut out[start..]))
            .len();
        out.truncate(start + written);
        out.push(b'\n');
    }
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
}

/// Handle on the writer thread; cheap to clone, one per connection.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Bytes queued for the output at once ([`QUEUE_BYTES`]): blocks waiting on a slow
    /// output hold at most this much between them.
    budget: Arc<tokio::sync::Semaphore>,
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
        Ok((Writer { tx, budget }, handle))
    }

    /// Writes one block's lines and waits until they are written and flushed.
    pub async fn write(&self, bytes: Vec<u8>) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        let need = u32::try_from(bytes.len().clamp(1, QUEUE_BYTES)).unwrap_or(u32::MAX);
        let room = self
            .budget
            .clone()
            .acquire_many_owned(need)
            .await
            .map_err(|_| WriteError::Stopped)?;
        self.tx
            .send(Job {
                bytes,
                done,
                _room: room,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        wait.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Io)
    }

    /// True once the writer thread has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
