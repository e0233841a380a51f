//! SQL helpers shared by the queries: read-only connections, error context, the conversion
//! of numbers from outside, and columns as the archiver writes them.

use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::Value;

use crate::{Error, Layout, Result, Store, MAX_PAGE};

/// SQLite's own page cache per connection, KiB (its default is 2000). Reads are served by the
/// kernel's page cache anyway; a large cache per pooled connection and per back-fill only
/// stayed resident after a burst (300 collectors syncing at once: 10-18 MiB more 3 s later,
/// the same rows/s).
const PAGE_CACHE_KIB: i64 = 256;

/// How long a query waits on a lock held by the writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn open_ro(layout: &Layout, store: Store) -> Result<Connection> {
    let path = layout.path_of(store);
    if !path.is_file() {
        return Err(Error::Open {
            path,
            source: rusqlite::Error::InvalidPath("no such database file".into()),
        });
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
        .map_err(|source| Error::Open { path, source })?;
    Ok(conn)
}

pub(crate) fn q(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Query { what, source }
}

/// A number from outside (a request, a resume point) as an SQLite integer: past `i64::MAX`
/// it is clamped (and then matches nothing), never wrapped to a negative.
pub(crate) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn page(limit: usize) -> i64 {
    limit.min(MAX_PAGE) as i64
}

/// A JSON column of a typed record, by the column model ([`crate::columns::Kind::Json`]):
/// NULL is `None`; text that is not JSON is kept as a string, as the history API keeps it.
pub(crate) fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    Ok(crate::columns::Kind::Json.field(row.get_ref(idx)?))
}

pub(crate) fn u64_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    match row.get_ref(idx)? {
        ValueRef::Integer(i) => Ok(i.max(0) as u64),
        ValueRef::Real(f) => Ok(f.max(0.0) as u64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, 0)),
        _ => Err(rusqlite::Error::InvalidColumnType(
            idx,
            "integer".into(),
            rusqlite::types::Type::Null,
        )),
    }
}

pub(crate) fn count(conn: &Connection, sql: &str, what: &'static str) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(q(what))?;
    stmt.query_row([], |r| u64_col(r, 0)).map_err(q(what))
}
