//! The archiver database as the distributor uses it: a small pool of read-only connections
//! for history requests, and a connection of its own for each back-fill.
//!
//! Nothing holds a lock while it waits on a collector. History requests queue for a
//! connection without holding a thread (a semaphore in front of the pool; WAL readers never
//! block each other); past [`MAX_WAITING`] queued requests, or after [`QUEUE_TIMEOUT`], they
//! are refused as [`DbError::Busy`] (the API answers 503 with `Retry-After`). A back-fill,
//! which may wait on a slow collector, reads on its own connection ([`LazyDb::open_own`]), at
//! most [`crate::backfill::slots::MAX_BACKFILLS`] at once.
//!
//! The database is opened at start when it is there, and otherwise on use (an archiver may
//! create it after the distributor starts, or an operator may restore it), so a missing or
//! broken database costs history requests and resumes an error, never the process or the live
//! stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firehose_dbstore::seek::SeekPoints;
use firehose_dbstore::{ArchiverDb, Layout};
use tokio::sync::Semaphore;

/// How often a database that failed to open is tried again (on use, never in the background).
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Connections serving history requests.
pub const POOL_SIZE: usize = 4;
/// History requests that may wait for a connection; more are refused at once.
pub const MAX_WAITING: usize = 256;
/// Longest wait for a connection.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a query did not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// No database is configured.
    #[error("no archiver database configured (ARCHIVER_DB_DIR / ARCHIVER_DB_PATH)")]
    NotConfigured,
    /// The database cannot be opened (yet); opening is retried on use.
    #[error("archiver database not available: {0}")]
    Unavailable(#[source] Arc<firehose_dbstore::Error>),
    /// Too many requests are waiting: try again shortly.
    #[error("too many history requests at once; retry shortly")]
    Busy,
    /// The query failed.
    #[error("database query failed: {0}")]
    Query(#[source] Arc<firehose_dbstore::Error>),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[source] Arc<tokio::task::JoinError>),
}

/// The configured archiver database, opened lazily, with its connection pool.
#[derive(Debug)]
pub struct LazyDb {
    layout: Option<Layout>,
    idle: Mutex<Vec<ArchiverDb>>,
    /// One permit per pooled connection (idle or in use).
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// When the last attempt to open failed, and why.
    failed: Mutex<Option<(Instant, Arc<firehose_dbstore::Error>)>>,
    /// Where row-offset pages start, shared by the pooled connections.
    seeks: Arc<SeekPoints>,
}

impl LazyDb {
    /// Tries to open `layout` now (blocking, at start); a failure is logged and retried on use.
    pub fn open(layout: Option<Layout>) -> Self {
        let me = Self {
            layout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(POOL_SIZE)),
            waiting: AtomicUsize::new(0),
            failed: Mutex::new(None),
            seeks: Arc::new(SeekPoints::default()),
        };
        if me.layout.is_some() {
            match me.connect() {
                Ok(db) => me.idle.lock().expect("pool lock").push(db),
                Err(e) => {
                    tracing::warn!(error = %e, "history requests answer 503 until the archiver database can be opened (retried on use)");
                }
            }
        }
        me
    }

    /// The seek points of row-offset history pages (see [`firehose_dbstore::seek`]).
    pub fn seek_points(&self) -> Arc<SeekPoints> {
        self.seeks.clone()
    }

    /// Whether a database is configured at all.
    pub fn is_configured(&self) -> bool {
        self.layout.is_some()
    }

    /// Opens a new connection (at most once per [`RETRY_EVERY`] after a failure). Blocking.
    fn connect(&self) -> Result<ArchiverDb, DbError> {
        let Some(layout) = &self.layout else {
            return Err(DbError::NotConfigured);
        };
        let mut failed = self.failed.lock().expect("lazy db lock");
        if let Some((at, why)) = &*failed {
            if at.elapsed() < RETRY_EVERY {
                return Err(DbError::Unavailable(why.clone()));
            }
        }
        match ArchiverDb::open(layout) {
            Ok(db) => {
                if failed.take().is_some() {
                    tracing::info!("archiver database opened");
                }
                Ok(db)
            }
            Err(e) => {
                let why = Arc::new(e);
                *failed = Some((Instant::now(), why.clone()));
                Err(DbError::Unavailable(why))
            }
        }
    }

    /// A connection of the back-fill's own (blocking: call it off the async threads), taken
    /// while holding a [`crate::backfill::slots::BackfillSlot`].
    pub fn open_own(&self) -> Result<ArchiverDb, DbError> {
        self.connect()
    }

    /// Runs `f` on a pooled connection, on the blocking pool. Waits for a connection without
    /// holding a thread; refuses with [`DbError::Busy`] when too many wait or the wait is long.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&ArchiverDb) -> Result<T, firehose_dbstore::Error> + Send + 'static,
    ) -> Result<T, DbError> {
        if !self.is_configured() {
            return Err(DbError::NotConfigured);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(DbError::Busy);
        }
        let permit =
            tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let Ok(Ok(permit)) = permit else {
            return Err(DbError::Busy);
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let popped = me.idle.lock().expect("pool lock").pop();
            let db = match popped {
                Some(db) => db,
                None => me.connect()?,
            };
            let result = f(&db).map_err(|e| {
                tracing::error!(error = %e, "database query failed");
                DbError::Query(Arc::new(e))
            });
            me.idle.lock().expect("pool lock").push(db);
            result
        })
        .await
        .map_err(|e| DbError::Task(Arc::new(e)))?
    }
}
