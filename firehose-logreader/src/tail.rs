//! Async tailing: inotify wake-ups, a safety-net poll, a bounded channel of events.
//!
//! Each [`DataLogReader`] runs in its own task; its file reads run on tokio's blocking pool,
//! never on the async workers. The task is woken by inotify events on the data-log directory
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
//!         println!("{} {}", e.data_type, e.record.id());
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
use tokio::sync::mpsc;
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
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            batch: 512,
            channel_capacity: 4096,
            max_log_files: crate::files::DEFAULT_MAX_LOG_FILES,
            inotify: true,
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
    let (tx, rx) = mpsc::channel(opts.channel_capacity.max(1));
    let mut tasks = Vec::new();
    for t in DataType::ALL {
        let files = LogFiles::new(dir, t.log_name()).with_max_log_files(opts.max_log_files);
        let reader = DataLogReader::with_files(files, t, start(t));
        tasks.push(spawn_reader(reader, opts, tx.clone()).await?);
    }
    Ok(LogTail { rx, tasks })
}

/// Fixes the start position of `reader` (on the blocking pool), then spawns the task that runs
/// it and sends its events to `tx`.
pub async fn spawn_reader(
    mut reader: DataLogReader,
    opts: TailOptions,
    tx: mpsc::Sender<LogEvent>,
) -> Result<JoinHandle<()>> {
    let dir = reader.files().dir().to_owned();
    let notify = if opts.inotify {
        let inotify = Inotify::init().map_err(|source| Error::Inotify {
            path: dir.clone(),
            source,
        })?;
        let mask = WatchMask::MODIFY
            | WatchMask::CLOSE_WRITE
            | WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE;
        inotify
            .watches()
            .add(&dir, mask)
            .map_err(|source| Error::Inotify {
                path: dir.clone(),
                source,
            })?;
        Some(
            inotify
                .into_event_stream(vec![0u8; 16 * 1024])
                .map_err(|source| Error::Inotify {
                    path: dir.clone(),
                    source,
                })?,
        )
    } else {
        None
    };
    // Watch first, then fix the start: nothing appended in between goes unnoticed.
    let reader = tokio::task::spawn_blocking(move || {
        // An error here (e.g. an unreadable pointer) is reported again by the first read.
        if let Err(e) = reader.prepare() {
            tracing::warn!(error = %e, "data log: cannot open the start position yet");
        }
        reader
    })
    .await
    .expect("prepare does not panic");
    Ok(tokio::spawn(run(reader, opts, tx, notify)))
}

async fn run(
    mut reader: DataLogReader,
    opts: TailOptions,
    tx: mpsc::Sender<LogEvent>,
    mut notify: Option<inotify::EventStream<Vec<u8>>>,
) {
    let files = reader.files().clone();
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
    loop {
        let batch = opts.batch.max(1);
        let joined = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let res = reader.read_available(batch, &mut events);
            (reader, events, res)
        })
        .await;
        let (r, events, res) = match joined {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "data log reader task failed");
                return;
            }
        };
        reader = r;
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
        // Wait for a change to one of our files, or the poll interval.
        let sleep = tokio::time::sleep(opts.poll_interval);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = tx.closed() => return,
                ev = next_event(&mut notify) => match ev {
                    Some(Ok(ev)) if ev.mask.contains(EventMask::Q_OVERFLOW) || mine(ev.name.as_deref()) => {
                        // Coalesce whatever else is already queued.
                        if let Some(s) = notify.as_mut() {
                            while let Some(Some(_)) = s.next().now_or_never() {}
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

async fn next_event(
    notify: &mut Option<inotify::EventStream<Vec<u8>>>,
) -> Option<std::io::Result<inotify::Event<std::ffi::OsString>>> {
    match notify {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
