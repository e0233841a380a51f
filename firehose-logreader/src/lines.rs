//! Splitting a file's bytes into lines in linear time, with a bound on a line's length.
//!
//! Bytes are searched for a newline once: a line that arrives in many reads is not rescanned
//! from its start after each one. A line longer than the bound is not kept: its bytes are
//! dropped as they come, and once its newline arrives it is reported as
//! a skipped piece with its size, so memory stays bounded whatever a writer puts in a log.

use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};

/// Default longest line: far above the largest real entry (receipts are KiBs to a few MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Bytes read from a file per call.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// What comes out of the buffer.
#[derive(Debug)]
pub(crate) enum Piece {
    /// A complete line, its newline included.
    Line(Bytes),
    /// A line over the bound was skipped: its size, newline included.
    TooLong(u64),
}

/// The bytes read past the last complete line.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    buf: BytesMut,
    /// Bytes at the start of `buf` known to hold no newline.
    scanned: usize,
    max_line: usize,
    /// Dropping an overlong line: its bytes so far.
    skipping: Option<u64>,
}

impl LineBuffer {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            max_line: max_line.max(1),
            skipping: None,
        }
    }

    /// Appends up to [`READ_CHUNK`] bytes from `file`; the number read (0 at its end).
    pub(crate) fn fill(&mut self, file: &mut impl Read) -> std::io::Result<usize> {
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        match file.read(&mut self.buf[len..]) {
            Ok(n) => {
                self.buf.truncate(len + n);
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(len);
                Err(e)
            }
        }
    }

    /// The next complete line or skipped overlong line, if the buffer holds one.
    pub(crate) fn next(&mut self) -> Option<Piece> {
        if let Some(dropped) = self.skipping {
            return match memchr::memchr(b'\n', &self.buf) {
                Some(nl) => {
                    self.buf.advance(nl + 1);
                    self.skipping = None;
                    self.scanned = 0;
                    Some(Piece::TooLong(dropped + nl as u64 + 1))
                }
                None => {
                    self.skipping = Some(dropped + self.buf.len() as u64);
                    self.buf.clear();
                    None
                }
            };
        }
        match memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            Some(i) => {
                let nl = self.scanned + i;
                self.scanned = 0;
                Some(Piece::Line(self.buf.split_to(nl + 1).freeze()))
            }
            None if self.buf.len() > self.max_line => {
                self.skipping = Some(self.buf.len() as u64);
                self.buf.clear();
                self.scanned = 0;
                None
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Bytes held of an incomplete line (dropped ones of an overlong line included).
    pub(crate) fn held(&self) -> u64 {
        self.skipping.unwrap_or(0) + self.buf.len() as u64
    }

    /// Forgets everything held.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.skipping = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut b = LineBuffer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            let mut r: &[u8] = c;
            b.fill(&mut r).unwrap();
            while let Some(p) = b.next() {
                out.push(match p {
                    Piece::Line(l) => String::from_utf8_lossy(&l).into_owned(),
                    Piece::TooLong(n) => format!("<{n}>"),
                });
            }
        }
        out
    }

    #[test]
    fn lines_across_reads_and_overlong_lines_skipped() {
        assert_eq!(pieces(100, &[b"ab", b"c\nde", b"\n"]), ["abc\n", "de\n"]);
        let long = vec![b'x'; 250];
        assert_eq!(
            pieces(100, &[&long[..120], &long[120..], b"\nok\n"]),
            ["<251>", "ok\n"]
        );
        let mut b = LineBuffer::new(10);
        let mut r: &[u8] = &[b'y'; 50];
        b.fill(&mut r).unwrap();
        assert!(b.next().is_none());
        assert_eq!(b.held(), 50, "counted, not kept");
        assert_eq!(b.buf.len(), 0);
    }
}
