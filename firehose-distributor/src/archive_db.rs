//! The archiver database as the distributor uses it: opened at start when it is there, and
//! otherwise opened again on use (an archiver may create it after the distributor starts, or
//! an operator may restore it), so a missing or broken database costs history requests and
//! resumes an error, never the process or the live stream.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use firehose_dbstore::{ArchiverDb, Layout};

use crate::api::SharedDb;

/// How often a database that failed to open is tried again (on use, never in the background).
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The configured archiver database, opened lazily.
#[derive(Debug)]
pub struct LazyDb {
    layout: Option<Layout>,
    opened: OnceLock<SharedDb>,
    /// When the last attempt failed, and why.
    failed: Mutex<Option<(Instant, String)>>,
}

impl LazyDb {
    /// Tries to open `layout` now (blocking, at start); a failure is logged and retried on use.
    pub fn open(layout: Option<Layout>) -> Self {
        let me = Self {
            layout,
            opened: OnceLock::new(),
            failed: Mutex::new(None),
        };
        if me.layout.is_some() {
            if let Err(e) = me.get() {
                tracing::warn!(error = %e, "history requests answer 503 until the archiver database can be opened (retried on use)");
            }
        }
        me
    }

    /// Whether a database is configured at all.
    pub fn is_configured(&self) -> bool {
        self.layout.is_some()
    }

    /// The open database, opening it if needed (at most once per [`RETRY_EVERY`]).
    /// Blocking: call it off the async threads.
    pub fn get(&self) -> Result<SharedDb, String> {
        if let Some(db) = self.opened.get() {
            return Ok(db.clone());
        }
        let Some(layout) = &self.layout else {
            return Err(
                "no archiver database configured (ARCHIVER_DB_DIR / ARCHIVER_DB_PATH)".into(),
            );
        };
        let mut failed = self.failed.lock().expect("lazy db lock");
        if let Some(db) = self.opened.get() {
            return Ok(db.clone());
        }
        if let Some((at, why)) = &*failed {
            if at.elapsed() < RETRY_EVERY {
                return Err(why.clone());
            }
        }
        match ArchiverDb::open(layout) {
            Ok(db) => {
                if failed.take().is_some() {
                    tracing::info!("archiver database opened");
                }
                Ok(self.opened.get_or_init(|| Arc::new(Mutex::new(db))).clone())
            }
            Err(e) => {
                let why = format!("archiver database not available: {e}");
                *failed = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }
}
