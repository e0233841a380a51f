//! The original distributor's own checkpoint database (`db/checkpoints.db`), read once when
//! firehose-distributor takes over its MQ publishing.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("checkpoints.db");
//! let c = rusqlite::Connection::open(&path).unwrap();
//! c.execute_batch("CREATE TABLE data_publish_checkpoints(id integer, data_type varchar NOT NULL, mode string NOT NULL, cursor string NOT NULL, PRIMARY KEY (id));
//!     INSERT INTO data_publish_checkpoints (data_type, mode, cursor) VALUES ('cycle', 'MQ', '42');").unwrap();
//! assert_eq!(firehose_dbstore::checkpoint::original_mq_cursor(&path).unwrap().as_deref(), Some("42"));
//! ```

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Error, Result};

/// The cursor text of the row `data_type = 'cycle'`, `mode = 'MQ'` (a JSON number: the cycle
/// the original publishes from on restart); `None` without such a row. Opened read-only.
pub fn original_mq_cursor(path: &Path) -> Result<Option<String>> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            Error::Open {
                path: path.to_owned(),
                source,
            }
        })?;
    let query = |source| Error::Query {
        what: "original MQ checkpoint",
        source,
    };
    conn.query_row(
        "SELECT cursor FROM data_publish_checkpoints WHERE data_type = 'cycle' AND mode = 'MQ'",
        [],
        |r| r.get::<_, rusqlite::types::Value>(0),
    )
    .optional()
    .map_err(query)
    .map(|v| {
        v.map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Real(f) => f.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    })
}
