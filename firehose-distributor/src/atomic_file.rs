//! Replacing a small state file so that a crash leaves the old or the new contents, never a
//! torn file: write a temporary file beside it, fsync, rename over it, fsync the directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, atomically and durably.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}
