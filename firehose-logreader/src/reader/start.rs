//! Opening the file a start position names: the live end, the oldest file, or a saved
//! position (a gap if that file is gone).

use std::io::{Read, Seek, SeekFrom};

use super::{Current, DataLogReader};
use crate::error::{IoContext, Result};
use crate::events::{Gap, LogEvent, StartAt};
use crate::files::{open_if_exists, Candidate, FileId, END_MARKER};
use crate::lines::READ_CHUNK;

impl DataLogReader {
    /// Opens the file the start position names. `Ok(false)` if there is nothing to open yet.
    pub(super) fn open_start(&mut self, out: &mut Vec<LogEvent>) -> Result<bool> {
        let start = self.start.expect("start is kept until a file is opened");
        if let Some(n) = self.live_wait {
            let path = self.files.log_path(n);
            let Some(file) = open_if_exists(&path)? else {
                return Ok(false);
            };
            let id = FileId::of(&file.metadata().at(&path)?);
            self.switch_to(Candidate {
                path,
                number: n,
                file,
                id,
            });
            self.start = None;
            return Ok(true);
        }
        match start {
            StartAt::Live => {
                let Some(n) = self.files.read_pointer()? else {
                    // No log yet: whatever appears from now on is new.
                    self.start = Some(StartAt::Oldest);
                    return Ok(false);
                };
                let path = self.files.log_path(n);
                let Some(file) = open_if_exists(&path)? else {
                    // The pointer moved before the file was created: it will hold only new data.
                    self.live_wait = Some(n);
                    return Ok(false);
                };
                let id = FileId::of(&file.metadata().at(&path)?);
                self.cur = Some(Current {
                    file,
                    path,
                    number: n,
                    id,
                    offset: 0,
                    line: 0,
                    ended: false,
                });
                // Skip what is already there, line by line, without yielding it.
                self.skip_existing()?;
            }
            StartAt::Oldest => {
                let Some(first) = self.earliest(None)? else {
                    return Ok(false);
                };
                self.switch_to(first);
            }
            StartAt::After(pos) => {
                let found = [
                    self.files.log_path(pos.file_number),
                    self.files.old_path(pos.file_number),
                ]
                .into_iter()
                .find_map(|p| match open_if_exists(&p) {
                    Ok(Some(f)) => f
                        .metadata()
                        .ok()
                        .filter(|m| FileId::of(m) == pos.file_id)
                        .map(|_| (p, f)),
                    _ => None,
                });
                match found {
                    Some((path, mut file)) => {
                        file.seek(SeekFrom::Start(pos.offset)).at(&path)?;
                        self.cur = Some(Current {
                            file,
                            path,
                            number: pos.file_number,
                            id: pos.file_id,
                            offset: pos.offset,
                            line: pos.line,
                            ended: false,
                        });
                    }
                    None => {
                        let Some(first) = self.earliest(None)? else {
                            return Ok(false);
                        };
                        out.push(LogEvent::Gap(Gap {
                            data_type: self.data_type,
                            bytes: 0,
                            reason: format!(
                                "{}: saved position (file {}, line {}) is gone; resuming at the oldest file on disk, {}",
                                self.files.name(),
                                pos.file_number,
                                pos.line,
                                first.path.display()
                            ),
                        }));
                        self.switch_to(first);
                    }
                }
            }
        }
        self.start = None;
        Ok(true)
    }

    /// Live start: consume the complete lines already in the file without yielding them.
    fn skip_existing(&mut self) -> Result<()> {
        let cur = self.cur.as_mut().expect("open");
        let mut buf = vec![0u8; READ_CHUNK];
        let mut pos = 0u64;
        // The head of the current line: enough to recognise an `End:` line.
        let mut head: Vec<u8> = Vec::with_capacity(END_MARKER.len());
        loop {
            let n = cur.file.read(&mut buf).at(&cur.path)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                pos += 1;
                if b == b'\n' {
                    cur.line += 1;
                    cur.offset = pos;
                    cur.ended = head == END_MARKER;
                    head.clear();
                } else if head.len() < END_MARKER.len() {
                    head.push(b);
                }
            }
        }
        // Back to the end of the last complete line: a half-written one is read later, whole.
        cur.file.seek(SeekFrom::Start(cur.offset)).at(&cur.path)?;
        Ok(())
    }
}
