//! # firehose-logreader
//!
//! Turns an archiver's (or collector's) rotating data-log files into an ordered, lossless stream
//! of typed records.
//!
//! * [`files`]: names of the files in a data-log directory, file identities;
//! * [`entry`]: what a line is: a typed [`LogEntry`], an [`UntypedEntry`] (a JSON object the
//!   original would forward too), or malformed; every entry's bytes canonical;
//! * [`events`]: what a read yields ([`LogEvent`]: entries, malformed lines, gaps) and
//!   [`LogPosition`], a resume point;
//! * [`reader`]: [`DataLogReader`], the synchronous exactly-once reader of one data name (its
//!   start positions in `reader/start.rs`);
//! * [`tail`]: [`LogTail`], which wakes the reader with inotify (plus a safety-net poll) and
//!   delivers entries on a bounded channel, and [`tail_all`], which merges the three data types;
//! * [`writer`]: [`DataLogWriter`], a writer that behaves exactly like the archiver's, for
//!   simulators, tests and Rust archivers.
//!
//! Each entry comes with its raw line bytes ([`bytes::Bytes`]), so a distributor can forward it
//! without serialising it again.

pub mod entry;
mod error;
pub mod events;
pub mod files;
pub mod lines;
pub mod reader;
mod successor;
pub mod tail;
pub mod writer;

pub use error::{Error, Result};
pub use reader::{DataLogReader, LogEntry, LogEvent, LogPosition, StartAt, UntypedEntry};
pub use tail::{tail_all, tail_readers, LogTail, TailOptions};
pub use writer::{DataLogWriter, WriterOptions};
