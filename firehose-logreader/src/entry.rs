//! What one complete data-log line is: a typed entry, an entry the original would forward but
//! that does not fit the typed records, or a malformed line.
//!
//! The original distributor forwards any JSON object it finds in a log, so a line with a
//! missing or `null` field that [`Record`] requires is still an entry here
//! ([`UntypedEntry`]): it is forwarded as it is, and only the resume machinery, which needs
//! the (cycle, timestamp, id) keys, passes it over. Every entry's bytes are canonical
//! (`safeStringify`): a line written another way (plain `JSON.stringify`'s key order, spaces)
//! is re-serialised once here, so that a signature over the bytes verifies in any collector.

use bytes::Bytes;
use firehose_core::canonicalize::canonicalize;
use firehose_core::record_key::RecordKey;
use firehose_core::records::{DataType, Record};

use crate::files::LogPosition;

/// One data-log entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The entry's type.
    pub data_type: DataType,
    /// The record's type, id, cycle and timestamp (read without building the record).
    pub key: RecordKey,
    /// When the record was made (ms): a transaction's or receipt's timestamp, a cycle's start.
    pub time_ms: u64,
    /// The entry in canonical JSON (without the newline), ready to forward: the line exactly
    /// as written, unless it was not canonical.
    pub raw: Bytes,
    /// Position just after this entry: resume from here to read the next one.
    pub position: LogPosition,
    /// The line was not canonical and `raw` is its re-serialised form.
    pub recanonicalized: bool,
}

impl LogEntry {
    /// The whole typed record, parsed from `raw` (the reader checked that it parses).
    pub fn record(&self) -> firehose_core::Result<Record> {
        Record::parse_line(self.data_type, &self.raw)
    }
}

/// A JSON object in a data log that the typed records do not accept (a required field
/// missing or `null`): forwarded like any entry, without resume keys.
#[derive(Debug, Clone)]
pub struct UntypedEntry {
    /// The log's data type.
    pub data_type: DataType,
    /// The entry in canonical JSON (without the newline).
    pub raw: Bytes,
    /// Position just after this entry.
    pub position: LogPosition,
    /// Why it is not a typed record.
    pub reason: String,
    /// The line was not canonical and `raw` is its re-serialised form.
    pub recanonicalized: bool,
}

/// What a line is.
#[derive(Debug)]
// Nearly every line is typed: boxing it would add an allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Line {
    /// A typed entry, after `skipped` bytes of a half-written line (0 normally).
    Typed {
        key: RecordKey,
        time_ms: u64,
        raw: Bytes,
        recanonicalized: bool,
        skipped: usize,
    },
    /// A JSON object that is not a typed record.
    Untyped {
        raw: Bytes,
        reason: String,
        recanonicalized: bool,
    },
    /// Not an entry.
    Malformed(String),
}

/// Classifies one complete line (without its newline).
pub(crate) fn classify(data_type: DataType, body: Bytes) -> Line {
    match typed(data_type, &body) {
        Ok(line) => return line,
        Err(Some((raw, reason, recanonicalized))) => {
            return Line::Untyped {
                raw,
                reason,
                recanonicalized,
            }
        }
        Err(None) => {}
    }
    // Not JSON. A writer that crashed mid-line and restarted leaves `<half line><full line>`:
    // recover the full line when a suffix of this one is a complete entry.
    let recovered = body
        .windows(2)
        .enumerate()
        .skip(1)
        .filter(|(_, w)| w == b"{\"")
        .find_map(|(i, _)| match typed(data_type, &body.slice(i..)) {
            Ok(Line::Typed {
                key,
                time_ms,
                raw,
                recanonicalized,
                ..
            }) => Some(Line::Typed {
                key,
                time_ms,
                raw,
                recanonicalized,
                skipped: i,
            }),
            _ => None,
        });
    recovered.unwrap_or_else(|| {
        Line::Malformed(match firehose_core::canonical::safe_parse_slice(&body) {
            Ok(_) => "not a JSON object".to_owned(),
            Err(e) => e.to_string(),
        })
    })
}

/// A typed line, or the error: `Some((canonical bytes, reason, recanonicalized))` for a JSON
/// object that is not a typed record, `None` for anything else.
type NotTyped = Option<(Bytes, String, bool)>;

fn typed(data_type: DataType, body: &Bytes) -> Result<Line, NotTyped> {
    let (raw, recanonicalized) = match canonicalize(body) {
        Ok(std::borrow::Cow::Borrowed(_)) => (body.clone(), false),
        Ok(std::borrow::Cow::Owned(v)) => (Bytes::from(v), true),
        Err(_) => return Err(None),
    };
    // The key, and that the line is a typed record, without building its JSON values.
    match RecordKey::from_line(data_type, &raw) {
        Ok((key, time_ms)) => Ok(Line::Typed {
            key,
            time_ms,
            raw,
            recanonicalized,
            skipped: 0,
        }),
        Err(e) if raw.first() == Some(&b'{') => Err(Some((raw, e.to_string(), recanonicalized))),
        Err(_) => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Line {
        classify(DataType::OriginalTx, Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn typed_untyped_malformed_and_recovered() {
        let ok = r#"{"cycle":1,"originalTxData":{},"timestamp":2,"txId":"a"}"#;
        assert!(matches!(
            line(ok),
            Line::Typed {
                recanonicalized: false,
                skipped: 0,
                ..
            }
        ));
        let spaced = r#"{"txId": "a", "timestamp": 2, "cycle": 1, "originalTxData": {}}"#;
        match line(spaced) {
            Line::Typed {
                raw,
                recanonicalized,
                ..
            } => {
                assert!(recanonicalized);
                assert_eq!(&raw[..], ok.as_bytes());
            }
            other => panic!("{other:?}"),
        }
        let nulls = r#"{"cycle":null,"originalTxData":{},"timestamp":2,"txId":"a"}"#;
        assert!(matches!(
            line(nulls),
            Line::Untyped {
                recanonicalized: false,
                ..
            }
        ));
        assert!(matches!(line(r#"{"other":1}"#), Line::Untyped { .. }));
        assert!(matches!(line("[1,2]"), Line::Malformed(r) if r == "not a JSON object"));
        assert!(matches!(line("{\"cyc"), Line::Malformed(_)));
        let half = format!("{{\"cycle\":1,\"orig{ok}");
        assert!(matches!(line(&half), Line::Typed { skipped: 16, .. }));
    }
}
