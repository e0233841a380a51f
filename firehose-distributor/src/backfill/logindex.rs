//! Where a resuming session starts reading the retained data logs.
//!
//! A resume back-fills from SQLite first. An archiver appends an entry to its data log and
//! commits it to SQLite a moment later, so an entry the live reader published just before the
//! session registered may still be missing from SQLite when the back-fill queries it. The
//! back-fill therefore also scans the retained logs, but only their recent part: the live
//! reader records checkpoints ("every entry up to here was written before time t"), and the
//! scan starts at the last checkpoint older than [`COMMIT_WINDOW`]. Entries before it are
//! assumed committed to SQLite by then.
//!
//! Until the first checkpoint is old enough (just after start-up, or for a data type with no
//! traffic), the scan starts at the oldest retained entry: slower, never wrong.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use firehose_core::records::DataType;
use firehose_logreader::{LogPosition, StartAt};

/// How long an archiver may take between appending an entry to its log and committing it to
/// SQLite, as far as resume is concerned.
pub const COMMIT_WINDOW: Duration = Duration::from_secs(60);

/// The live reader records a checkpoint every this many entries of a type.
pub const CHECKPOINT_EVERY: u64 = 64;

/// A position in a data log and a time by which every entry up to it had been written.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    after: LogPosition,
    written_by: Instant,
}

#[derive(Debug, Default)]
struct PerType {
    checkpoints: VecDeque<Checkpoint>,
    entries: u64,
}

/// Recent checkpoints per data type (a few per [`COMMIT_WINDOW`]; older ones are pruned).
#[derive(Debug, Default)]
pub struct LogIndex {
    types: Mutex<[PerType; 3]>,
}

impl LogIndex {
    /// Notes that the live reader read an entry of `t` ending at `after`, now.
    pub fn entry_read(&self, t: DataType, after: LogPosition) {
        let mut types = self.types.lock().expect("log index lock");
        let p = &mut types[t.index()];
        p.entries += 1;
        if p.entries % CHECKPOINT_EVERY == 1 {
            Self::push(p, after, Instant::now());
        }
    }

    /// Records that every entry of `t` up to `after` had been written by `written_by`.
    pub fn checkpoint(&self, t: DataType, after: LogPosition, written_by: Instant) {
        let mut types = self.types.lock().expect("log index lock");
        Self::push(&mut types[t.index()], after, written_by);
    }

    fn push(p: &mut PerType, after: LogPosition, written_by: Instant) {
        if p.checkpoints
            .back()
            .is_some_and(|c| c.written_by > written_by)
        {
            return; // keep the times ordered; a later checkpoint already exists
        }
        p.checkpoints.push_back(Checkpoint { after, written_by });
        // Keep one checkpoint older than the window, drop the ones before it.
        let old = written_by.checked_sub(COMMIT_WINDOW);
        while let (Some(old), Some(second)) = (old, p.checkpoints.get(1)) {
            if second.written_by <= old {
                p.checkpoints.pop_front();
            } else {
                break;
            }
        }
    }

    /// Where a session registered at `registered` scans `t`'s logs from.
    pub fn scan_start(&self, t: DataType, registered: Instant) -> StartAt {
        let Some(limit) = registered.checked_sub(COMMIT_WINDOW) else {
            return StartAt::Oldest;
        };
        let types = self.types.lock().expect("log index lock");
        types[t.index()]
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.written_by <= limit)
            .map_or(StartAt::Oldest, |c| StartAt::After(c.after))
    }

    /// Checkpoints held for `t` (for metrics and tests).
    pub fn len(&self, t: DataType) -> usize {
        self.types.lock().expect("log index lock")[t.index()]
            .checkpoints
            .len()
    }

    /// Whether no checkpoint is held for any type.
    pub fn is_empty(&self) -> bool {
        DataType::ALL.iter().all(|t| self.len(*t) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_logreader::files::FileId;

    fn pos(offset: u64) -> LogPosition {
        LogPosition {
            file_number: 1,
            file_id: FileId {
                dev: 1,
                ino: 2,
                btime_ns: 3,
            },
            offset,
            line: offset,
        }
    }

    #[test]
    fn scan_starts_at_the_last_checkpoint_older_than_the_window() {
        let idx = LogIndex::default();
        let t0 = Instant::now() + COMMIT_WINDOW * 10;
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Nothing recorded: the whole ring.
        assert_eq!(idx.scan_start(DataType::Receipt, at(0)), StartAt::Oldest);
        idx.checkpoint(DataType::Receipt, pos(10), at(0));
        idx.checkpoint(DataType::Receipt, pos(20), at(30));
        idx.checkpoint(DataType::Receipt, pos(30), at(50));
        // Registered 45 s after the first checkpoint: none is 60 s old yet.
        assert_eq!(idx.scan_start(DataType::Receipt, at(45)), StartAt::Oldest);
        assert_eq!(
            idx.scan_start(DataType::Receipt, at(95)),
            StartAt::After(pos(20))
        );
        assert_eq!(
            idx.scan_start(DataType::Receipt, at(500)),
            StartAt::After(pos(30))
        );
        // Other types are independent.
        assert_eq!(idx.scan_start(DataType::Cycle, at(500)), StartAt::Oldest);
    }

    #[test]
    fn old_checkpoints_are_pruned_but_one_older_than_the_window_stays() {
        let idx = LogIndex::default();
        let t0 = Instant::now();
        for s in 0..600u64 {
            idx.checkpoint(DataType::Cycle, pos(s), t0 + Duration::from_secs(s));
        }
        // Checkpoints of the last 60 s plus one before.
        assert!(
            idx.len(DataType::Cycle) <= 62,
            "{}",
            idx.len(DataType::Cycle)
        );
        assert_eq!(
            idx.scan_start(DataType::Cycle, t0 + Duration::from_secs(599)),
            StartAt::After(pos(539))
        );
    }

    #[test]
    fn the_reader_records_every_nth_entry() {
        let idx = LogIndex::default();
        for i in 0..(CHECKPOINT_EVERY * 3) {
            idx.entry_read(DataType::OriginalTx, pos(i));
        }
        assert_eq!(idx.len(DataType::OriginalTx), 3);
    }
}
