//! Async tailing: inotify wake-ups, a safety-net poll, a bounded channel of events.
//!
//! Each [`DataLogReader`] runs on a thread of its own, driven by a small task: its file reads
//! never run on the async workers, nor wait on tokio's blocking pool (which history queries
//! and back-fills share). A data-log directory that is removed and created again is watched
//! again. The task is woken by inotify events on the data-log directory
//! (only those naming its own files) and, as a safety net for inotify queue overflows and
//! filesystems without inotify, every `poll_interval`. Events go into a bounded channel: a
//! consumer that does not keep up slows the reader down (backpressure), nothing is dropped.
//!
//! ```no_run
//! # async fn demo() -> firehose_logreader::Result<()> {
//! use firehose_logreader::{tail_all, LogEvent, StartAt, TailOptions};
//!
//! let mut tail = tail_all("data-logs/127.0.0.1_4000".as_ref(), |_| StartAt::Live, TailOptions::default()).await?;
//! while let Some(event) = tail.recv().await {
//!     if let LogEvent::Entry(e) = event {
//!         println!("{} {}", e.data_type, e.key.id);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use firehose_core::records::DataType;
use futures::{FutureExt, StreamExt};
use inotify::{EventMask, Inotify, WatchMask};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::files::LogFiles;
use crate::reader::{DataLogReader, LogEvent, StartAt};

/// Settings of a tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailOptions {
    /// Safety-net poll interval (the original polled every 100 ms; with inotify this only
    /// matters when notifications are lost).
    pub poll_interval: Duration,
    /// Events read per blocking call.
    pub batch: usize,
    /// Capacity of the event channel.
    pub channel_capacity: usize,
    /// Ring size of the log files.
    pub max_log_files: u32,
    /// Use inotify (on by default; off = poll only).
    pub inotify: bool,
    /// Longest line; a longer one is reported as malformed and skipped.
    pub max_line_bytes: usize,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            batch: 512,
            channel_capacity: 4096,
            max_log_files: crate::files::DEFAULT_MAX_LOG_FILES,
            inotify: true,
            max_line_bytes: crate::lines::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// A running tail of one or more data names; events arrive in write order per data name.
/// Dropping it stops its tasks.
#[derive(Debug)]
pub struct LogTail {
    rx: mpsc::Receiver<LogEvent>,
    tasks: Vec<JoinHandle<()>>,
}

impl LogTail {
    /// Tails one reader. Returns once the start position is fixed: with [`StartAt::Live`],
    /// every entry appended after this returns is delivered.
    pub async fn spawn(reader: DataLogReader, opts: TailOptions) -> Result<Self> {
        let (tx, rx) = mpsc::channel(opts.channel_capacity.max(1));
        let task = spawn_reader(reader, opts, tx).await?;
        Ok(Self {
            rx,
            tasks: vec![task],
        })
    }

    /// The next event; `None` once every reader task has stopped.
    pub async fn recv(&mut self) -> Option<LogEvent> {
        self.rx.recv().await
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<LogEvent> {
        self.rx.try_recv().ok()
    }
}

impl Drop for LogTail {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Tails cycles, original transactions and receipts of one directory, merged into one stream.
/// `start` chooses each data type's start position. Returns once the start positions are fixed.
pub async fn tail_all(
    dir: &Path,
    start: impl Fn(DataType) -> StartAt,
    opts: TailOptions,
) -> Result<LogTail> {
    let readers = DataType::ALL.map(|t| {
        let files = LogFiles::new(dir, t.log_name()).with_max_log_files(opts.max_log_files);
        DataLogReader::with_files(files, t, start(t)).with_max_line_bytes(opts.max_line_bytes)
    });
    tail_readers(readers, opts).await
}

/// [`tail_all`] with readers the caller made (and may have read from already: each goes on
/// from where it is, so nothing between is lost or repeated).
pub async fn tail_readers(
    readers: impl IntoIterator<Item = DataLogReader>,
    opts: TailOptions,
) -> Result<LogTail> {
    let (tx, rx) = mpsc::channel(opts.channel_capacity.max(1));
    let mut tasks = Vec::new();
    for reader in readers {
        tasks.push(spawn_reader(reader, opts, tx.clone()).await?);
    }
    Ok(LogTail { rx, tasks })
}

/// How often a removed data-log directory is looked for, to watch it again.
pub const REWATCH_EVERY: Duration = Duration::from_millis(100);

/// What one read on the reader's thread returns.
type Batch = (Vec<LogEvent>, Result<usize>);

/// A request to the reader's thread: read up to this many events (0: just answer), reply here.
type ReadRequest = (usize, oneshot::Sender<Batch>);

/// Watches `dir` for changes to log files, and for the directory itself going away.
fn watch(dir: &Path) -> Result<inotify::EventStream<Vec<u8>>> {
    let err = |source| Error::Inotify {
        path: dir.to_owned(),
        source,
    };
    let inotify = Inotify::init().map_err(err)?;
    let mask = WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF;
    inotify.watches().add(dir, mask).map_err(err)?;
    inotify.into_event_stream(vec![0u8; 16 * 1024]).map_err(err)
}

/// Runs `reader` on a thread of its own (named `datalog-<name>`), so that its file reads
/// never wait on tokio's blocking pool, which history queries and back-fills may fill. The
/// thread ends when the returned sender is dropped.
fn reader_thread(mut reader: DataLogReader) -> Result<std::sync::mpsc::Sender<ReadRequest>> {
    let (tx, rx) = std::sync::mpsc::channel::<ReadRequest>();
    let dir = reader.files().dir().to_owned();
    std::thread::Builder::new()
        .name(format!("datalog-{}", reader.files().name()))
        .spawn(move || {
            // An error here (e.g. an unreadable pointer) is reported again by the first read.
            if let Err(e) = reader.prepare() {
                tracing::warn!(error = %e, "data log: cannot open the start position yet");
            }
            while let Ok((batch, reply)) = rx.recv() {
                let mut events = Vec::new();
                // A request for 0 events only asks whether the thread is ready.
                let res = match batch {
                    0 => Ok(0),
                    _ => reader.read_available(batch, &mut events),
                };
                if reply.send((events, res)).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| Error::Io { path: dir, source })?;
    Ok(tx)
}

/// Starts `reader` on its own thread, fixes its start position there, then spawns the task
/// that wakes it and sends its events to `tx`.
pub async fn spawn_reader(
    reader: DataLogReader,
    opts: TailOptions,
    tx: mpsc::Sender<LogEvent>,
) -> Result<JoinHandle<()>> {
    let dir = reader.files().dir().to_owned();
    let files = reader.files().clone();
    // Watch first, then fix the start: nothing appended in between goes unnoticed.
    let notify = if opts.inotify {
        Some(watch(&dir)?)
    } else {
        None
    };
    let thread = reader_thread(reader)?;
    // The first request answers once `prepare` is done: the start position is fixed.
    let (reply, ready) = oneshot::channel();
    let _ = thread.send((0, reply));
    let _ = ready.await;
    Ok(tokio::spawn(run(thread, files, opts, tx, notify)))
}

async fn run(
    thread: std::sync::mpsc::Sender<ReadRequest>,
    files: LogFiles,
    opts: TailOptions,
    tx: mpsc::Sender<LogEvent>,
    mut notify: Option<inotify::EventStream<Vec<u8>>>,
) {
    let mine = |name: Option<&OsStr>| match name.and_then(OsStr::to_str) {
        Some(n) => {
            files.parse_number(n).is_some()
                || n == files
                    .pointer_path()
                    .file_name()
                    .and_then(OsStr::to_str)
                    .unwrap_or("")
        }
        None => true,
    };
    let mut failing = false;
    // The directory was removed or moved away: watch it again once it is back. (A reader
    // holding a deleted file open pins the old directory, so the kernel may never say it is
    // gone: its identity is checked every second too.)
    let mut rewatch = false;
    let mut watched = notify.as_ref().and_then(|_| dir_id(files.dir()));
    let mut check = tokio::time::interval(DIR_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = opts.batch.max(1);
        let (reply, answer) = oneshot::channel();
        if thread.send((batch, reply)).is_err() {
            tracing::error!(name = files.name(), "data log reader thread ended");
            return;
        }
        let Ok((events, res)) = answer.await else {
            tracing::error!(name = files.name(), "data log reader thread failed");
            return;
        };
        let n = events.len();
        for ev in events {
            if tx.send(ev).await.is_err() {
                return; // Nobody listens any more.
            }
        }
        match res {
            Err(e) => {
                // A disk fault: say so once, keep the position, try again after a poll interval.
                if !failing {
                    tracing::error!(error = %e, "data log: read failed; retrying");
                }
                failing = true;
            }
            Ok(_) => {
                if failing {
                    tracing::info!(name = files.name(), "data log: reading again");
                }
                failing = false;
                if n >= batch {
                    continue;
                }
            }
        }
        if rewatch && opts.inotify && files.dir().is_dir() {
            match watch(files.dir()) {
                Ok(w) => {
                    tracing::info!(dir = %files.dir().display(), "data-log directory is back; watching it again");
                    notify = Some(w);
                    watched = dir_id(files.dir());
                    rewatch = false;
                    continue; // read what was written before the watch
                }
                Err(e) => tracing::debug!(error = %e, "cannot watch the data-log directory yet"),
            }
        }
        // Wait for a change to one of our files, or the poll interval (while the directory
        // is gone, look for it again often).
        let wait = match rewatch {
            true => opts.poll_interval.min(REWATCH_EVERY),
            false => opts.poll_interval,
        };
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = tx.closed() => return,
                _ = check.tick(), if notify.is_some() => {
                    if dir_id(files.dir()) != watched {
                        rewatch = directory_gone(&files, &mut notify);
                        break;
                    }
                }
                ev = next_event(&mut notify) => match ev {
                    Some(Ok(ev)) if ev.mask.intersects(GONE) => {
                        rewatch = directory_gone(&files, &mut notify);
                        break;
                    }
                    Some(Ok(ev)) if ev.mask.contains(EventMask::Q_OVERFLOW) || mine(ev.name.as_deref()) => {
                        // Coalesce whatever else is already queued (noticing the directory
                        // going away among it).
                        let mut gone = false;
                        if let Some(s) = notify.as_mut() {
                            while let Some(Some(ev)) = s.next().now_or_never() {
                                gone |= ev.is_ok_and(|ev| ev.mask.intersects(GONE));
                            }
                        }
                        if gone {
                            rewatch = directory_gone(&files, &mut notify);
                        }
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "inotify failed; polling only");
                        notify = None;
                    }
                    None => notify = None,
                }
            }
        }
    }
}

/// How often the watched directory's identity is checked.
pub const DIR_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The directory's device and inode, if it exists.
fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Events saying the watched directory itself is gone (removed, moved, or the watch dropped).
const GONE: EventMask = EventMask::DELETE_SELF
    .union(EventMask::MOVE_SELF)
    .union(EventMask::IGNORED);

/// Drops the watch of a directory that went away; returns `true` (watch again when it is back).
fn directory_gone(files: &LogFiles, notify: &mut Option<inotify::EventStream<Vec<u8>>>) -> bool {
    tracing::warn!(dir = %files.dir().display(), "data-log directory removed or moved; looking for it every {REWATCH_EVERY:?}");
    *notify = None;
    true
}

async fn next_event(
    notify: &mut Option<inotify::EventStream<Vec<u8>>>,
) -> Option<std::io::Result<inotify::Event<std::ffi::OsString>>> {
    match notify {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
