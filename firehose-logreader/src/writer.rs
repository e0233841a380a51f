//! A data-log writer that behaves exactly like the archiver's `DataLogWriter`.
//!
//! Used by simulators, demos, tests and benchmarks, and by a Rust archiver or collector that
//! wants to produce logs the distributor (ours or the original) can tail:
//!
//! * one entry per line, `safeStringify(record) + "\n"`, through a buffered stream (a reader may
//!   see half a line);
//! * after `max_entries` lines: `End: Number of entries: <n>`, then the next file number
//!   (wrapping after `max_log_files`), the pointer file rewritten, the new file created;
//! * on reaching file `max_log_files / 2`: `old-*` files deleted and files
//!   `max_log_files/2 + 1 ..= max_log_files` renamed to `old-<name>-log<K>.txt`; on reaching
//!   `max_log_files`: `old-*` deleted and files `1 ..= max_log_files/2` renamed;
//! * on restart: the pointer is read, the active file's lines counted, and appending goes on.
//!
//! ```
//! use firehose_logreader::writer::{DataLogWriter, WriterOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let opts = WriterOptions { max_entries: 2, ..WriterOptions::default() };
//! let mut w = DataLogWriter::open(dir.path(), "cycle", opts).unwrap();
//! for i in 0..5 {
//!     w.append(format!("{{\"counter\":{i}}}").as_bytes()).unwrap();
//! }
//! w.flush().unwrap();
//! assert_eq!(std::fs::read_to_string(dir.path().join("active-cycle-log.txt")).unwrap(), "cycle-log3.txt");
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::files::{LogFiles, DEFAULT_MAX_LOG_FILES, END_MARKER};

/// Writer settings (the archiver's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Entries per file before rotating (archiver: cycle 500, receipt and originalTx 10000).
    pub max_entries: u64,
    /// Files in the ring (archiver: 10).
    pub max_log_files: u32,
    /// Size of the stream buffer; when it fills, whatever it holds is written, even half a line.
    pub buffer_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_log_files: DEFAULT_MAX_LOG_FILES,
            buffer_bytes: 16 * 1024,
        }
    }
}

impl WriterOptions {
    /// The archiver's default entries per file for a data name.
    pub fn archiver_default(name: &str) -> Self {
        Self {
            max_entries: if name == "cycle" { 500 } else { 10_000 },
            ..Self::default()
        }
    }
}

/// Appends entries to a rotating ring of data-log files.
#[derive(Debug)]
pub struct DataLogWriter {
    files: LogFiles,
    opts: WriterOptions,
    number: u32,
    entries: u64,
    out: BufWriter<File>,
}

impl DataLogWriter {
    /// Opens the ring of `name` in `dir` (created if missing), continuing the active file.
    pub fn open(dir: &Path, name: &str, opts: WriterOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let files = LogFiles::new(dir, name).with_max_log_files(opts.max_log_files);
        let (number, entries) = match files.read_pointer()? {
            Some(n) => (n, count_lines(&files.log_path(n))?),
            None => {
                write_pointer(&files, 1)?;
                (1, 0)
            }
        };
        let path = files.log_path(number);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at(&path)?;
        let mut w = Self {
            files,
            opts,
            number,
            entries,
            out: BufWriter::with_capacity(opts.buffer_bytes.max(1), file),
        };
        if w.entries >= w.opts.max_entries {
            w.rotate()?;
        }
        Ok(w)
    }

    /// Appends one entry (the line without its newline).
    pub fn append(&mut self, line: &[u8]) -> Result<()> {
        let path = self.files.log_path(self.number);
        self.out.write_all(line).at(&path)?;
        self.out.write_all(b"\n").at(&path)?;
        self.entries += 1;
        if self.entries >= self.opts.max_entries {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes out what the stream buffer holds.
    pub fn flush(&mut self) -> Result<()> {
        let path = self.files.log_path(self.number);
        self.out.flush().at(&path)
    }

    /// The active file number.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Entries in the active file.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The files this writer writes.
    pub fn files(&self) -> &LogFiles {
        &self.files
    }

    /// Simulates a crash: whatever the buffer holds is lost, except its first `keep` bytes,
    /// which reach the file (typically half a line).
    pub fn crash(self, keep: usize) -> Result<()> {
        let path = self.files.log_path(self.number);
        let buffered = self.out.buffer().to_vec();
        let (mut file, _) = self.out.into_parts();
        file.write_all(&buffered[..keep.min(buffered.len())])
            .at(&path)
    }

    fn rotate(&mut self) -> Result<()> {
        let path = self.files.log_path(self.number);
        writeln!(
            self.out,
            "{}{}",
            String::from_utf8_lossy(END_MARKER),
            self.entries
        )
        .at(&path)?;
        self.out.flush().at(&path)?;

        let max = self.files.max_log_files();
        self.number = self.files.next_number(self.number);
        let half = max / 2;
        if self.number == half {
            self.retire(half + 1..=max)?;
        } else if self.number == max {
            self.retire(1..=half)?;
        }
        write_pointer(&self.files, self.number)?;
        let path = self.files.log_path(self.number);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at(&path)?;
        self.out = BufWriter::with_capacity(self.opts.buffer_bytes.max(1), file);
        self.entries = 0;
        Ok(())
    }

    /// Deletes `old-*` and renames the given file numbers to `old-`.
    fn retire(&self, numbers: std::ops::RangeInclusive<u32>) -> Result<()> {
        for n in 1..=self.files.max_log_files() {
            let old = self.files.old_path(n);
            match std::fs::remove_file(&old) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&old),
                _ => {}
            }
        }
        for n in numbers {
            let from = self.files.log_path(n);
            if from.exists() {
                std::fs::rename(&from, self.files.old_path(n)).at(&from)?;
            }
        }
        Ok(())
    }
}

fn write_pointer(files: &LogFiles, n: u32) -> Result<()> {
    let path = files.pointer_path();
    std::fs::write(&path, files.file_name(n)).at(&path)
}

/// Lines in a file (`\n` count), 0 if it does not exist.
fn count_lines(path: &Path) -> Result<u64> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(path),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
}
