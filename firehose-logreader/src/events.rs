//! What a reader produces: entries, skipped lines, gaps, and the positions to resume from.

use std::path::PathBuf;

use firehose_core::records::DataType;

pub use crate::entry::{LogEntry, UntypedEntry};
pub use crate::files::LogPosition;

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// At the end of the active file when the reader first reads (or is prepared, see
    /// [`crate::DataLogReader::prepare`]): only entries written from then on (the original's way).
    Live,
    /// At the oldest entry still on disk (including `old-` files).
    Oldest,
    /// Just after a saved position. If that file is gone, a [`LogEvent::Gap`] is reported and
    /// reading starts at the oldest entry still on disk.
    After(LogPosition),
}

/// A line that could not be read as an entry; it is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The data type of the file.
    pub data_type: DataType,
    /// The file it was found in (its name when opened).
    pub path: PathBuf,
    /// 1-based line number in that file.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

/// Entries that can no longer be read (the file holding them is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The data type of the log.
    pub data_type: DataType,
    /// What happened.
    pub reason: String,
    /// Bytes known to be lost (a file truncated under the reader), 0 when unknown.
    pub bytes: u64,
}

/// What a read produces, in order.
#[derive(Debug, Clone)]
// Nearly every event is an entry: boxing it would add an allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
pub enum LogEvent {
    /// The next entry.
    Entry(LogEntry),
    /// The next entry, a JSON object the typed records do not accept (forward it as it is).
    Untyped(UntypedEntry),
    /// A skipped line.
    Malformed(Malformed),
    /// Entries were lost before the reader could read them.
    Gap(Gap),
}
