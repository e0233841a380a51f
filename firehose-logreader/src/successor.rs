//! Which file comes after the current one: the earliest-written file not read yet, whatever
//! the ring's size, and whether anything was lost on the way (a gap).

use std::path::PathBuf;

use crate::error::{IoContext, Result};
use crate::files::{mtime_ns, open_if_exists, Candidate, FileId};
use crate::reader::DataLogReader;

impl DataLogReader {
    /// The file written right after the current one, if it exists yet.
    ///
    /// That is the earliest-written file not read yet and written no earlier than the current
    /// one. Normally `<name>-log<n+1>.txt` or its `old-` name; any other number means the files
    /// between were removed before they could be read (reported as a [`Gap`]).
    pub(crate) fn successor(&self) -> Result<Option<Candidate>> {
        let cur = self.cur.as_ref().expect("open");
        let next = self.files.next_number(cur.number);
        // Cheap test first: this runs on every wake-up while the reader is at the end.
        // The current name now holds another file (or none): the directory was replaced, or
        // the number was recycled under us.
        let replaced = || {
            std::fs::metadata(&cur.path).map_or(true, |m| FileId::of(&m) != cur.id)
                && !self.files.old_path(cur.number).exists()
        };
        let moved_on = self.files.log_path(next).exists()
            || self.files.old_path(next).exists()
            || self
                .files
                .read_pointer()
                .ok()
                .flatten()
                .is_some_and(|p| p != cur.number)
            || replaced();
        if !moved_on {
            return Ok(None);
        }
        let after = mtime_ns(&cur.file.metadata().at(&cur.path)?);
        self.earliest(Some((after, cur.number, cur.id)))
    }

    /// Whether file `next` may follow file `cur` with nothing lost: the next number, or 1
    /// after the highest number the directory holds. The ring's size is what the writer's
    /// `maxLogFiles` made it, read off the directory: a ring of 5 or 20 is no gap.
    pub(crate) fn follows(&self, cur: u32, next: u32) -> Result<bool> {
        if next == cur.saturating_add(1) {
            return Ok(true);
        }
        if next != 1 {
            return Ok(false);
        }
        let highest = self.files.list()?.iter().map(|(_, n, _)| *n).max();
        Ok(highest.is_none_or(|h| cur >= h))
    }

    /// The earliest-written unread file (after `after`: its mtime, number and identity).
    pub(crate) fn earliest(&self, after: Option<(i128, u32, FileId)>) -> Result<Option<Candidate>> {
        // Ties of mtime (a coarse clock gives many rotations one timestamp) are broken by the
        // ring's age order: `old-` files first (the writer retires half a lap at a time, so
        // they are always the oldest), in number order; then the others from the one after the
        // active file (the pointer) round to the active file itself. Without a pointer, the
        // ring order starts after the current file.
        let active = self.files.read_pointer().ok().flatten();
        let listed = self.files.list()?;
        // The ring order only needs a modulus at least as large as every number in play
        // (the writer's `maxLogFiles` may differ from the configured one).
        let max = listed
            .iter()
            .map(|(_, n, _)| *n)
            .chain(active)
            .chain(after.map(|(_, n, _)| n))
            .fold(self.files.max_log_files(), u32::max);
        let mut all: Vec<(i128, u32, PathBuf)> = listed
            .into_iter()
            .filter(|(_, _, meta)| {
                let id = FileId::of(meta);
                !self.history.contains(&id)
                    && after.is_none_or(|(t, _, cur)| id != cur && mtime_ns(meta) >= t)
            })
            .map(|(path, n, meta)| {
                let is_old = path
                    .file_name()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.starts_with("old-"));
                let from = active.or(after.map(|(_, cur_n, _)| cur_n));
                let rank = match from {
                    _ if is_old => n,
                    Some(a) => max + (n + max - a - 1) % max,
                    None => max + n,
                };
                (mtime_ns(&meta), rank, path)
            })
            .collect();
        all.sort();
        for (_, _, path) in all {
            // It may be renamed or deleted between listing and opening: take the next one then.
            let Some(file) = open_if_exists(&path)? else {
                continue;
            };
            let id = FileId::of(&file.metadata().at(&path)?);
            let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
            let Some(number) = self.files.parse_number(name) else {
                continue;
            };
            return Ok(Some(Candidate {
                path,
                number,
                file,
                id,
            }));
        }
        Ok(None)
    }
}
