//! The one column model: which tables the archiver has, what each column holds, how a column
//! becomes JSON, and the order rows are read in. Every read path goes through it: the history
//! API's values ([`crate::history`]), its canonical bytes ([`crate::history_json`]) and the
//! typed records of a resume ([`crate::keyed`]), so the three cannot disagree.
//!
//! The rules are the original's (`deserializeDbReceipt` and friends):
//!
//! - a JSON column ([`Kind::Json`]) is parsed when it holds non-empty text (`x &&= parse(x)`),
//!   as `safeJsonParse` reads it; text that is not JSON stays a string, as does `""`;
//! - a cycle's `cycleRecord` ([`Kind::Record`]) is parsed when truthy and `null` otherwise
//!   (`x ? parse(x) : null`): `""` and `0` are `null`;
//! - `globalModification` ([`Kind::Flag`]) is `true` only for the integer 1 (`value === 1`):
//!   `2`, `"true"`, `"1"` and `NULL` are `false`;
//! - any other column keeps its SQLite type: integers as numbers (`isGlobal` stays `0`/`1`),
//!   `NULL` as `null`, text and blobs as strings.
//!
//! ```
//! use firehose_dbstore::columns::{Kind, Table};
//! use rusqlite::types::ValueRef;
//!
//! assert_eq!(Table::Receipts.kind("globalModification"), Kind::Flag);
//! assert_eq!(Kind::Flag.value(ValueRef::Integer(2)), serde_json::json!(false));
//! assert_eq!(Kind::Json.value(ValueRef::Text(br#"{"b":1,"a":2}"#)), serde_json::json!({"a":2,"b":1}));
//! assert_eq!(Kind::Json.value(ValueRef::Text(b"not json")), serde_json::json!("not json"));
//! let mut out = Vec::new();
//! Kind::Json.write(&mut out, ValueRef::Text(br#"{"b":1,"a":2}"#));
//! assert_eq!(out, br#"{"a":2,"b":1}"#);
//! ```

use std::borrow::Cow;

use firehose_core::canonical::{safe_parse, write_number, write_str, write_value, Flavour};
use firehose_core::canonicalize::canonicalize;
use rusqlite::types::ValueRef;
use serde_json::Value;

/// The archiver's tables; in the directory layout each lives in a file of its own (so this is
/// also the store: [`crate::Store`] is the same type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `cycles` (the history API returns the parsed `cycleRecord` column only).
    Cycles,
    /// `receipts`.
    Receipts,
    /// `originalTxsData`.
    OriginalTxs,
    /// `accounts` (optional store).
    Accounts,
    /// `transactions` (optional store).
    Transactions,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Kept as SQLite has it.
    Plain,
    /// JSON text, parsed.
    Json,
    /// A boolean stored as an integer: true only for 1.
    Flag,
    /// JSON text, parsed; `null` when falsy (`""`, `0`, NULL).
    Record,
}

impl Table {
    /// The SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Cycles => "cycles",
            Table::Receipts => "receipts",
            Table::OriginalTxs => "originalTxsData",
            Table::Accounts => "accounts",
            Table::Transactions => "transactions",
        }
    }

    /// The file name in the directory layout.
    pub fn file_name(self) -> &'static str {
        match self {
            Table::Cycles => "cycles.sqlite3",
            Table::Receipts => "receipts.sqlite3",
            Table::OriginalTxs => "originalTxsData.sqlite3",
            Table::Accounts => "accounts.sqlite3",
            Table::Transactions => "transactions.sqlite3",
        }
    }

    /// The store (file) holding the table: the table itself.
    pub fn store(self) -> Table {
        self
    }

    /// The column holding the cycle counter.
    pub fn cycle_column(self) -> &'static str {
        match self {
            Table::Cycles => "counter",
            Table::Receipts | Table::OriginalTxs => "cycle",
            Table::Accounts | Table::Transactions => "cycleNumber",
        }
    }

    /// What `column` of this table holds.
    pub fn kind(self, column: &str) -> Kind {
        let json = match self {
            Table::Cycles => {
                if column == "cycleRecord" {
                    return Kind::Record;
                }
                false
            }
            Table::Receipts => {
                if column == "globalModification" {
                    return Kind::Flag;
                }
                matches!(
                    column,
                    "tx" | "afterStates" | "beforeStates" | "signedReceipt" | "appReceiptData"
                )
            }
            Table::OriginalTxs => column == "originalTxData",
            Table::Accounts => column == "data",
            Table::Transactions => matches!(column, "data" | "originalTxData"),
        };
        if json {
            Kind::Json
        } else {
            Kind::Plain
        }
    }

    /// The `ORDER BY` terms of this table's row order: the original's (cycle, then timestamp;
    /// counter for cycles), newest first with `desc`, then `tiebreak` (an id column, or
    /// `rowid`) when rows must be totally ordered (keyset paging, seeking).
    pub fn order_by(self, desc: bool, tiebreak: Option<&str>) -> String {
        let dir = if desc { "DESC" } else { "ASC" };
        let mut terms = match self {
            Table::Cycles => format!("counter {dir}"),
            _ => format!("{} {dir}, timestamp {dir}", self.cycle_column()),
        };
        if let Some(t) = tiebreak {
            terms.push_str(&format!(", {t} {dir}"));
        }
        terms
    }
}

impl Kind {
    /// The column as a JSON value.
    pub fn value(self, v: ValueRef<'_>) -> Value {
        match (self, v) {
            (Kind::Flag, v) => Value::Bool(is_one(v)),
            (Kind::Record, v) if is_falsy(v) => Value::Null,
            (Kind::Record, ValueRef::Text(t) | ValueRef::Blob(t)) => parse_json(t),
            (_, ValueRef::Null) => Value::Null,
            (_, ValueRef::Integer(n)) => Value::from(n),
            (_, ValueRef::Real(f)) => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            (Kind::Json, ValueRef::Text(t)) if !t.is_empty() => parse_json(t),
            (_, ValueRef::Text(t) | ValueRef::Blob(t)) => {
                Value::String(String::from_utf8_lossy(t).into_owned())
            }
        }
    }

    /// The column written as `safeStringify` writes [`Kind::value`], without building the
    /// value when it can: canonical JSON text is spliced as it is.
    pub fn write(self, buf: &mut Vec<u8>, v: ValueRef<'_>) {
        match (self, v) {
            (Kind::Flag, v) => buf.extend_from_slice(if is_one(v) { b"true" } else { b"false" }),
            (Kind::Record, v) if is_falsy(v) => buf.extend_from_slice(b"null"),
            (Kind::Record, ValueRef::Text(t) | ValueRef::Blob(t)) => write_json_text(buf, t),
            (_, ValueRef::Null) => buf.extend_from_slice(b"null"),
            (_, ValueRef::Integer(i)) => write_number(buf, &serde_json::Number::from(i)),
            (_, ValueRef::Real(f)) => match serde_json::Number::from_f64(f) {
                Some(n) => write_number(buf, &n),
                None => buf.extend_from_slice(b"null"),
            },
            (Kind::Json, ValueRef::Text(t)) if !t.is_empty() => write_json_text(buf, t),
            (_, ValueRef::Text(t) | ValueRef::Blob(t)) => {
                write_str(buf, &String::from_utf8_lossy(t))
            }
        }
    }

    /// The column for a typed record's optional field: `None` for `NULL`, else
    /// [`Kind::value`].
    pub fn field(self, v: ValueRef<'_>) -> Option<Value> {
        match (self, v) {
            (Kind::Plain | Kind::Json | Kind::Record, ValueRef::Null) => None,
            (kind, v) => Some(kind.value(v)),
        }
    }
}

/// The original's `value === 1`.
fn is_one(v: ValueRef<'_>) -> bool {
    matches!(v, ValueRef::Integer(1))
}

/// JavaScript's falsy column values: NULL, `0`, `""`.
fn is_falsy(v: ValueRef<'_>) -> bool {
    match v {
        ValueRef::Null => true,
        ValueRef::Integer(n) => n == 0,
        ValueRef::Real(f) => f == 0.0 || f.is_nan(),
        ValueRef::Text(t) | ValueRef::Blob(t) => t.is_empty(),
    }
}

/// JSON text as `safeJsonParse` reads it; text that is not JSON is kept as a string.
pub(crate) fn parse_json(t: &[u8]) -> Value {
    let text = String::from_utf8_lossy(t);
    safe_parse(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

/// JSON text spliced when canonical, re-serialised when not; text that is not JSON becomes a
/// string (as [`parse_json`] reads it).
pub(crate) fn write_json_text(buf: &mut Vec<u8>, t: &[u8]) {
    match std::str::from_utf8(t)
        .ok()
        .and_then(|_| canonicalize(t).ok())
    {
        Some(Cow::Borrowed(b)) => buf.extend_from_slice(b),
        Some(Cow::Owned(b)) => buf.extend_from_slice(&b),
        None => write_value(buf, &parse_json(t), Flavour::Safe),
    }
}
