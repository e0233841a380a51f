//! The synchronous reader of one data name's ring of log files.
//!
//! [`DataLogReader::read_available`] reads whatever complete lines are on disk and returns at
//! once; [`crate::tail`] calls it when inotify (or the safety-net poll) says something changed.
//!
//! How it stays exactly-once:
//! * the current file is held **open**: renaming it to `old-` or deleting it does not stop the
//!   reader from finishing it;
//! * only complete lines are consumed; a half-written line waits in a buffer;
//! * a file is finished by its `End:` line, or (writer crashed before writing it) when its
//!   successor exists and a last read found nothing more;
//! * the successor is `<name>-log<n+1>.txt` or `old-<name>-log<n+1>.txt`, whichever was written
//!   after the current file and is not a file already read (a recycled number is a different
//!   inode and creation time).
//!
//! Malformed lines and gaps are returned as [`LogEvent`]s, not logged here: the consumer
//! logs and counts them once (a resume's scan of old files need not report them again).
//!
//! ```
//! use firehose_core::records::DataType;
//! use firehose_logreader::reader::{DataLogReader, LogEvent, StartAt};
//! use firehose_logreader::writer::{DataLogWriter, WriterOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut w = DataLogWriter::open(dir.path(), "cycle", WriterOptions::default()).unwrap();
//! let mut r = DataLogReader::new(dir.path(), DataType::Cycle, StartAt::Oldest);
//! w.append(br#"{"counter":1,"cycleMarker":"a","cycleRecord":{}}"#).unwrap();
//! w.flush().unwrap();
//! let mut events = Vec::new();
//! r.read_available(100, &mut events).unwrap();
//! assert!(matches!(&events[0], LogEvent::Entry(e) if e.key.cycle == 1));
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::entry::{classify, Line};
use crate::error::{IoContext, Result};
pub use crate::events::{Gap, LogEntry, LogEvent, LogPosition, Malformed, StartAt, UntypedEntry};
use crate::files::{Candidate, FileId, LogFiles, END_MARKER};
use crate::lines::{LineBuffer, Piece, DEFAULT_MAX_LINE_BYTES};
use bytes::Bytes;
use firehose_core::records::DataType;

mod start;

/// The file being read.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) number: u32,
    pub(crate) id: FileId,
    /// Offset after the last complete line consumed.
    offset: u64,
    /// Lines consumed.
    line: u64,
    /// The `End:` line was read (or the writer moved on without one).
    ended: bool,
}
/// Reads one data name's ring of files in write order, exactly once.
#[derive(Debug)]
pub struct DataLogReader {
    pub(crate) files: LogFiles,
    data_type: DataType,
    start: Option<StartAt>,
    pub(crate) cur: Option<Current>,
    /// Bytes read past `cur.offset`: at most one incomplete line once lines are consumed.
    pending: LineBuffer,
    /// Files already read to their end (never taken as a successor again).
    pub(crate) history: VecDeque<FileId>,
    /// Malformed-line events not yet returned.
    queued: Vec<LogEvent>,
    /// Live start found the pointer naming a file not created yet: read it from its start.
    live_wait: Option<u32>,
}

const HISTORY: usize = 64;

impl DataLogReader {
    /// A reader of `data_type`'s files in `dir` (ring of 10 files).
    pub fn new(dir: impl Into<PathBuf>, data_type: DataType, start: StartAt) -> Self {
        Self::with_files(LogFiles::new(dir, data_type.log_name()), data_type, start)
    }

    /// A reader of the given files (e.g. with another ring size).
    pub fn with_files(files: LogFiles, data_type: DataType, start: StartAt) -> Self {
        Self {
            files,
            data_type,
            start: Some(start),
            cur: None,
            pending: LineBuffer::new(DEFAULT_MAX_LINE_BYTES),
            history: VecDeque::new(),
            queued: Vec::new(),
            live_wait: None,
        }
    }

    /// Sets the longest line (default [`DEFAULT_MAX_LINE_BYTES`]); a longer one is reported
    /// as malformed with its position and size, and skipped.
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.pending = LineBuffer::new(max);
        self
    }

    /// The files read.
    pub fn files(&self) -> &LogFiles {
        &self.files
    }

    /// The data type read.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The path the current file had when it was opened (it may be `old-` by now).
    pub fn current_path(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path.as_path())
    }

    /// Position after the last consumed line (`None` before the first file is opened).
    pub fn position(&self) -> Option<LogPosition> {
        self.cur.as_ref().map(|c| LogPosition {
            file_number: c.number,
            file_id: c.id,
            offset: c.offset,
            line: c.line,
        })
    }

    /// Resolves the start position now (for [`StartAt::Live`]: the end of the active file at
    /// this moment). Reading would do it anyway; calling it first fixes the moment.
    pub fn prepare(&mut self) -> Result<()> {
        if self.cur.is_none() {
            let mut events = Vec::new();
            self.open_start(&mut events)?;
            self.queued.append(&mut events);
        }
        Ok(())
    }

    /// Reads up to `max` events that are available now, appending them to `out`; returns how
    /// many were appended. Never blocks waiting for data.
    pub fn read_available(&mut self, max: usize, out: &mut Vec<LogEvent>) -> Result<usize> {
        let before = out.len();
        let mut empty_reads_after_successor = 0;
        while out.len() - before < max {
            out.append(&mut self.queued);
            if self.cur.is_none() && !self.open_start(out)? {
                break;
            }
            let cur = self.cur.as_mut().expect("opened above");
            if !cur.ended {
                let got = self.read_lines(max - (out.len() - before), out)?;
                if got > 0 {
                    empty_reads_after_successor = 0;
                    continue;
                }
                let cur = self.cur.as_ref().expect("still open");
                if cur.ended {
                    continue;
                }
                // Nothing new. The writer may have moved on without an `End:` line (it crashed
                // and restarted): once a successor exists, one more empty read finishes us.
                if self.successor()?.is_none() {
                    break;
                }
                empty_reads_after_successor += 1;
                if empty_reads_after_successor < 2 {
                    continue;
                }
                self.finish_without_end();
            }
            match self.successor()? {
                Some(next) => {
                    let cur = self.cur.as_ref().expect("open");
                    if !self.follows(cur.number, next.number)? {
                        let reason = format!(
                            "{}: files after {} were removed before they were read; resuming at {}",
                            self.files.name(),
                            cur.path.display(),
                            next.path.display()
                        );
                        out.push(LogEvent::Gap(Gap {
                            data_type: self.data_type,
                            reason,
                            bytes: 0,
                        }));
                    }
                    self.switch_to(next)
                }
                None => break,
            }
        }
        out.append(&mut self.queued);
        Ok(out.len() - before)
    }

    /// Reads complete lines of the current file, up to `max` entries.
    fn read_lines(&mut self, max: usize, out: &mut Vec<LogEvent>) -> Result<usize> {
        let mut produced = 0;
        loop {
            // Consume complete lines already buffered.
            while produced < max {
                let Some(piece) = self.pending.next() else {
                    break;
                };
                let cur = self.cur.as_mut().expect("open");
                let line = match piece {
                    Piece::Line(line) => line,
                    Piece::TooLong(bytes) => {
                        cur.offset += bytes;
                        cur.line += 1;
                        let reason =
                            format!("line of {bytes} bytes, longer than the limit: skipped");
                        out.push(LogEvent::Malformed(Malformed {
                            data_type: self.data_type,
                            path: cur.path.clone(),
                            line: cur.line,
                            reason,
                        }));
                        continue;
                    }
                };
                cur.offset += line.len() as u64;
                cur.line += 1;
                let body = line.slice(..line.len() - 1);
                if body.starts_with(END_MARKER) {
                    cur.ended = true;
                    self.pending.clear();
                    return Ok(produced);
                }
                if body.is_empty() {
                    continue;
                }
                produced += self.push_line(body, out);
            }
            if produced >= max {
                return Ok(produced);
            }
            // Read more.
            let cur = self.cur.as_mut().expect("open");
            let n = self.pending.fill(&mut cur.file).at(&cur.path)?;
            if n == 0 {
                self.check_truncation(out)?;
                return Ok(produced);
            }
        }
    }

    /// At the end of the file: if it is now shorter than what was read of it, it was
    /// truncated under the reader. That is a gap (its size is reported); reading starts again
    /// at the file's start, where the writer now appends.
    fn check_truncation(&mut self, out: &mut Vec<LogEvent>) -> Result<()> {
        let cur = self.cur.as_mut().expect("open");
        let read = cur.offset + self.pending.held();
        let len = cur.file.metadata().at(&cur.path)?.len();
        if len >= read {
            return Ok(());
        }
        let reason = format!(
            "{} was truncated to {len} bytes after {read} had been read: whatever the writer wrote before the truncation and after the read is lost; reading it again from its start",
            cur.path.display()
        );
        out.push(LogEvent::Gap(Gap {
            data_type: self.data_type,
            reason,
            bytes: read - len,
        }));
        self.pending.clear();
        cur.file.seek(SeekFrom::Start(0)).at(&cur.path)?;
        cur.offset = 0;
        cur.line = 0;
        Ok(())
    }

    /// Turns one complete line into events; returns the number of entries (0 or 1).
    fn push_line(&self, body: Bytes, out: &mut Vec<LogEvent>) -> usize {
        let cur = self.cur.as_ref().expect("open");
        let position = LogPosition {
            file_number: cur.number,
            file_id: cur.id,
            offset: cur.offset,
            line: cur.line,
        };
        let malformed = |reason: String| {
            LogEvent::Malformed(Malformed {
                data_type: self.data_type,
                path: cur.path.clone(),
                line: cur.line,
                reason,
            })
        };
        match classify(self.data_type, body) {
            Line::Typed {
                key,
                time_ms,
                raw,
                recanonicalized,
                skipped,
            } => {
                if skipped > 0 {
                    out.push(malformed(format!(
                        "{skipped} bytes of a half-written line before a complete entry"
                    )));
                }
                out.push(LogEvent::Entry(LogEntry {
                    data_type: self.data_type,
                    key,
                    time_ms,
                    raw,
                    position,
                    recanonicalized,
                }));
                1
            }
            Line::Untyped {
                raw,
                reason,
                recanonicalized,
            } => {
                tracing::debug!(path = %cur.path.display(), line = cur.line, %reason, "data log: an entry the typed records do not accept; forwarded as it is");
                out.push(LogEvent::Untyped(UntypedEntry {
                    data_type: self.data_type,
                    raw,
                    position,
                    reason,
                    recanonicalized,
                }));
                1
            }
            Line::Malformed(reason) => {
                out.push(malformed(reason));
                0
            }
        }
    }

    /// The writer moved on without an `End:` line: drop what is left of the file.
    fn finish_without_end(&mut self) {
        let cur = self.cur.as_mut().expect("open");
        if self.pending.held() > 0 {
            let reason = format!(
                "{} bytes of an unterminated last line (the writer moved on)",
                self.pending.held()
            );
            self.queued.push(LogEvent::Malformed(Malformed {
                data_type: self.data_type,
                path: cur.path.clone(),
                line: cur.line + 1,
                reason,
            }));
            self.pending.clear();
        } else {
            tracing::warn!(path = %cur.path.display(), "data log: file ended without an End line; moving to the next");
        }
        cur.ended = true;
    }

    fn switch_to(&mut self, next: Candidate) {
        if let Some(old) = self.cur.take() {
            self.history.push_back(old.id);
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
        self.pending.clear();
        self.cur = Some(Current {
            file: next.file,
            path: next.path,
            number: next.number,
            id: next.id,
            offset: 0,
            line: 0,
            ended: false,
        });
    }
}
