//! Names and identities of the files in a data-log directory.
//!
//! For data name `receipt` the archiver writes `receipt-log1.txt` ... `receipt-log10.txt`,
//! renames half of the ring to `old-receipt-log<K>.txt` as it goes round, and keeps the name
//! of the file it is writing in `active-receipt-log.txt`.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Default number of files in the ring (`maxLogFiles`).
pub const DEFAULT_MAX_LOG_FILES: u32 = 10;

/// The prefix of the line that closes a full file: `End: Number of entries: <n>`.
pub const END_MARKER: &[u8] = b"End: Number of entries: ";

/// The files of one data name in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    dir: PathBuf,
    name: String,
    max_log_files: u32,
}

impl LogFiles {
    /// The files of `name` (`cycle`, `receipt`, `originalTx`, ...) in `dir`.
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            name: name.into(),
            max_log_files: DEFAULT_MAX_LOG_FILES,
        }
    }

    /// Sets the ring size (`maxLogFiles`, default 10).
    pub fn with_max_log_files(mut self, n: u32) -> Self {
        self.max_log_files = n.max(2);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ring size.
    pub fn max_log_files(&self) -> u32 {
        self.max_log_files
    }

    /// `<name>-log<n>.txt`.
    pub fn file_name(&self, n: u32) -> String {
        format!("{}-log{}.txt", self.name, n)
    }

    /// Path of `<name>-log<n>.txt`.
    pub fn log_path(&self, n: u32) -> PathBuf {
        self.dir.join(self.file_name(n))
    }

    /// Path of `old-<name>-log<n>.txt`.
    pub fn old_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("old-{}", self.file_name(n)))
    }

    /// Path of the pointer file `active-<name>-log.txt`.
    pub fn pointer_path(&self) -> PathBuf {
        self.dir.join(format!("active-{}-log.txt", self.name))
    }

    /// The number after `n` in the ring (wrapping after `max_log_files`).
    pub fn next_number(&self, n: u32) -> u32 {
        if n >= self.max_log_files {
            1
        } else {
            n + 1
        }
    }

    /// The file number in `<name>-log<n>.txt` or `old-<name>-log<n>.txt`.
    pub fn parse_number(&self, file_name: &str) -> Option<u32> {
        let rest = file_name.strip_prefix("old-").unwrap_or(file_name);
        let rest = rest
            .strip_prefix(self.name.as_str())?
            .strip_prefix("-log")?;
        rest.strip_suffix(".txt")?.parse().ok().filter(|n| *n > 0)
    }

    /// Reads the pointer file: `Ok(None)` if it does not exist yet or is empty.
    pub fn read_pointer(&self) -> Result<Option<u32>> {
        let path = self.pointer_path();
        match std::fs::read_to_string(&path) {
            // The writer rewrites the pointer in place: empty means "not written yet".
            Ok(content) if content.trim().is_empty() => Ok(None),
            Ok(content) => {
                let trimmed = content.trim();
                match self.parse_number(trimmed) {
                    Some(n) if !trimmed.starts_with("old-") => Ok(Some(n)),
                    _ => Err(Error::BadPointer {
                        path,
                        content: trimmed.to_owned(),
                        name: self.name.clone(),
                    }),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Every existing file of this name (current and `old-`), unordered.
    pub fn list(&self) -> Result<Vec<(PathBuf, u32, Metadata)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).at(&self.dir)? {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|s| self.parse_number(s)) else {
                continue;
            };
            // The file may vanish between listing and stat: skip it then.
            if let Ok(meta) = std::fs::metadata(entry.path()) {
                out.push((entry.path(), n, meta));
            }
        }
        Ok(out)
    }
}

/// Identifies one file across renames, and tells a recycled file number from the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Creation time in ns since the epoch, 0 where the filesystem does not record it.
    pub btime_ns: u64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        let btime_ns = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            btime_ns,
        }
    }
}

/// Modification time in ns: files of a ring are written one after another, so this orders them.
pub(crate) fn mtime_ns(meta: &Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

/// Where in the ring an entry ends: cheap to persist (serde) and to hand to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogPosition {
    /// File number N of `<name>-log<N>.txt`.
    pub file_number: u32,
    /// Identity of that file (survives the rename to `old-`, detects a recycled number).
    pub file_id: FileId,
    /// Byte offset just after the entry's newline.
    pub offset: u64,
    /// Lines of the file consumed up to and including the entry (1-based line number).
    pub line: u64,
}

/// A file to read next.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) path: PathBuf,
    pub(crate) number: u32,
    pub(crate) file: File,
    pub(crate) id: FileId,
}

pub(crate) fn open_if_exists(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let f = LogFiles::new("/x", "receipt");
        assert_eq!(f.file_name(3), "receipt-log3.txt");
        assert_eq!(f.parse_number("receipt-log3.txt"), Some(3));
        assert_eq!(f.parse_number("old-receipt-log10.txt"), Some(10));
        assert_eq!(f.parse_number("receiptOverwrite-log1.txt"), None);
        assert_eq!(f.parse_number("receipt-log0.txt"), None);
        assert_eq!(f.parse_number("active-receipt-log.txt"), None);
        assert_eq!(f.next_number(10), 1);
        assert_eq!(f.next_number(4), 5);
    }
}
