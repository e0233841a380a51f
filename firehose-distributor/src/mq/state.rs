//! The MQ publisher's cursor, in a small JSON file of our own (never in the archiver's
//! database, which is opened read-only).
//!
//! The file is replaced atomically (write a temporary file, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new cursor, never a torn one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The cursor: every cycle up to `through` has been published and confirmed by the broker,
/// with its original transactions and receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Last settled cycle (`None`: nothing published yet).
    pub through: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    version: u32,
    #[serde(flatten)]
    cursor: Cursor,
    /// Wall-clock ms of the write (for humans).
    updated_at_ms: u64,
}

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("MQ state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not ours or is damaged.
    #[error("MQ state file {path}: {reason} (move it away to publish from the first cycle again)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file at `path` (not touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads the cursor; a missing file is the empty cursor.
    pub fn load(&self) -> Result<Cursor, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Cursor::default()),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let f: File = serde_json::from_str(&text).map_err(|e| StateError::Invalid {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if f.version != 1 {
            return Err(StateError::Invalid {
                path: self.path.clone(),
                reason: format!("version {} (this build reads version 1)", f.version),
            });
        }
        Ok(f.cursor)
    }

    /// Replaces the cursor atomically and durably.
    pub fn save(&self, cursor: Cursor) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let body = serde_json::to_vec_pretty(&File {
            version: 1,
            cursor,
            updated_at_ms: crate::auth::now_ms(),
        })
        .expect("state serialises");
        crate::atomic_file::replace(&self.path, &body).map_err(io)?;
        Ok(())
    }
}

/// The cursor the original distributor saved in its checkpoint database (`./db/checkpoints.db`,
/// table `data_publish_checkpoints`, row `data_type = 'cycle'`, `mode = 'MQ'`). The original
/// republishes from its cursor cycle on restart, so every cycle before it is settled. No row
/// is the empty cursor.
pub fn import_original(path: &Path) -> Result<Cursor, StateError> {
    let invalid = |reason: String| StateError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let cursor = firehose_dbstore::checkpoint::original_mq_cursor(path)
        .map_err(|e| invalid(format!("the original's checkpoint database: {e}")))?;
    let Some(text) = cursor else {
        return Ok(Cursor::default());
    };
    let next: u64 = text
        .trim()
        .trim_matches('"')
        .parse()
        .map_err(|_| invalid(format!("checkpoint cursor `{text}` is not a cycle number")))?;
    Ok(Cursor {
        through: next.checked_sub(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path().join("s.json"));
        assert_eq!(f.load().unwrap(), Cursor::default());
        f.save(Cursor { through: Some(41) }).unwrap();
        assert_eq!(f.load().unwrap().through, Some(41));
        f.save(Cursor { through: Some(42) }).unwrap();
        assert_eq!(f.load().unwrap().through, Some(42));
        // Only the state file is left in the directory (no temporary files).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(f.path(), "{\"version\":1,\"through\":").unwrap();
        let e = f.load().unwrap_err().to_string();
        assert!(e.contains("move it away"), "{e}");
        std::fs::write(f.path(), "{\"version\":9,\"through\":1,\"updatedAtMs\":0}").unwrap();
        assert!(f.load().unwrap_err().to_string().contains("version 9"));
        let bad = StateFile::new(dir.path().join("no/such/dir/s.json"));
        assert!(matches!(
            bad.save(Cursor::default()),
            Err(StateError::Io { .. })
        ));
    }
}
