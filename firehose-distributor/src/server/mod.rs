//! The composition root: the distributor's shared state and lifecycle (settings, keys, the
//! hub, the database pool, the readers' counters; `serve` runs the listener until shutdown),
//! and everything that needs all of it.
//!
//! | module | what it does |
//! |---|---|
//! | [`readers`] | the live log readers: each entry counted, signed once, published to the hub |
//! | `prefill` | at start, the retained logs into the replay buffer for returning collectors |
//! | [`session`] | a collector's websocket: the check at the upgrade, then the live loop |
//! | [`session_backfill`] | a session's back-fill: slot, pacing, deadlines, hand-over to live |
//! | [`catchup`] | a resuming session's catch-up from the replay buffer (shared bytes, no slot), then live |
//! | [`router`] | the routes on the one port (CORS, body and time limits, rate limit) |
//! | [`api`] | the history API, answering as the original (signed requests and replies) |
//! | [`metrics`] | `/metrics`: Prometheus text, or the original's JSON |
//! | [`reload`] | the subscriber list reloaded on a file change or `SIGUSR1`; expired ones swept |
//! | [`mq`] | MQ mode's service: the publisher with the HTTP API beside it |

mod acks;
pub mod api;
pub(crate) mod catchup;
pub mod metrics;
pub mod mq;
mod prefill;
pub mod readers;
pub mod reload;
pub mod router;
pub mod session;
pub(crate) mod session_backfill;
mod stop;

use crate::metrics::Counter;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use firehose_core::records::DataType;
use std::sync::atomic::Ordering::Relaxed;
use tokio::net::TcpListener;

use crate::auth::{self, ReplayCache};
use crate::config::{Config, Subscriber};
use crate::ws::hub::{CloseReason, Hub, CLOSE_GOING_AWAY};

/// Read buffer of a collector session. Collectors only send pings and a close frame; the
/// websocket default (128 KiB, resident once read into) cost 1.3 GiB at 10,000 sessions.
pub const SESSION_READ_BUFFER: usize = 4096;

/// Largest message or frame a collector may send (the default, 64 MiB, would let every
/// session hold that much).
pub const SESSION_MAX_INCOMING: usize = 64 * 1024;

pub use crate::http::listener::{bind, LISTEN_BACKLOG};

/// Shared state of a running distributor.
pub struct Distributor {
    crypto: Crypto,
    keys: KeyPair,
    config: RwLock<Config>,
    replay: ReplayCache,
    backfill_slots: crate::backfill::slots::BackfillSlots,
    /// Where each collector got to (implicit resume).
    positions: Arc<crate::backfill::positions::Positions>,
    /// Counters of implicit resumes.
    implicit: crate::backfill::positions::ImplicitStats,
    /// Back-fills that yielded their slot to a waiting collector.
    backfills_yielded: Counter,
    db: Arc<crate::backfill::archive_db::LazyDb>,
    auth_failures: Counter,
    /// Resumes closed with 1011 (history unavailable, or the back-fill lapped by the ring).
    resumes_refused: Counter,
    /// Refused HTTP requests by route and reason.
    refusals: crate::http::refusals::Refusals,
    /// When this distributor started (Unix ms).
    started_ms: u64,
    limiter: crate::http::ratelimit::RateLimiter,
    bodies: crate::http::body_budget::BodyBudget,
    /// Session tasks still running (they outlive their hub registration while closing).
    live_sessions: std::sync::atomic::AtomicUsize,
    /// Checkpoints of the live readers, for resume scans of the retained logs.
    log_index: crate::backfill::logindex::LogIndex,
    /// Per data type: entries read from the logs, and the last entry's position.
    readers: [readers::ReaderStats; 3],
    /// MQ mode's publisher counters, when it runs (websocket subscriptions are refused then).
    mq: std::sync::OnceLock<Arc<crate::mq::MqStats>>,
    /// What the listener refused.
    listener_stats: Arc<crate::http::listener::ListenerStats>,
    /// Signatures shared between back-fills.
    signatures: crate::backfill::signatures::SignatureCache,
    /// The fan-out hub.
    hub: Hub,
    /// Every metric, for `/metrics`.
    registry: crate::metrics::Registry,
    /// The gauges set at a scrape.
    scrape: metrics::Scrape,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Distributor {
    /// The fan-out hub: sessions and their queues.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A distributor for `config` (validated first).
    pub fn new(config: Config) -> Result<Arc<Self>, crate::config::ConfigError> {
        config.validate()?;
        if config.uses_dev_keys() {
            tracing::warn!("USING THE PUBLIC DEV KEYS: anyone can forge this distributor's signatures. Set DISTRIBUTOR_PUBLIC_KEY / DISTRIBUTOR_SECRET_KEY.");
        }
        let layout = config.layout();
        if layout.is_none() {
            tracing::warn!("no ARCHIVER_DB_DIR / ARCHIVER_DB_PATH: the history API answers 503");
        }
        let db = Arc::new(crate::backfill::archive_db::LazyDb::open(layout));
        let positions = crate::backfill::positions::Positions::new(config.resume_max_keys);
        if let Some(path) = config
            .resume_state_file
            .as_deref()
            .filter(|_| config.implicit_resume)
        {
            let n = crate::backfill::positions_file::load(path, &positions);
            tracing::info!(file = %path.display(), collectors = n, "resume points loaded");
        }
        let registry = crate::metrics::Registry::default();
        let hub = Hub::with_replay(config.replay_buffer_bytes);
        let listener_stats = Arc::<crate::http::listener::ListenerStats>::default();
        let implicit = crate::backfill::positions::ImplicitStats::default();
        let signatures = crate::backfill::signatures::SignatureCache::default();
        let (auth_failures, resumes_refused, backfills_yielded) = Default::default();
        let scrape = metrics::Scrape::registered(
            &registry,
            metrics::Counted {
                hub: &hub.metrics,
                listener: &listener_stats,
                implicit: &implicit,
                evicted: &positions.evicted,
                signatures: signatures.counters(),
                auth_failures: &auth_failures,
                resumes_refused: &resumes_refused,
                backfills_yielded: &backfills_yielded,
            },
        );
        Ok(Arc::new(Self {
            crypto: config.crypto()?,
            keys: config.keys()?,
            limiter: crate::http::ratelimit::RateLimiter::new(config.rate_limit, true),
            bodies: Default::default(),
            config: RwLock::new(config),
            replay: ReplayCache::default(),
            backfill_slots: Default::default(),
            positions: Arc::new(positions),
            implicit,
            backfills_yielded,
            db,
            auth_failures,
            resumes_refused,
            refusals: crate::http::refusals::Refusals::registered(&registry),
            started_ms: auth::now_ms(),
            live_sessions: Default::default(),
            log_index: Default::default(),
            readers: readers::ReaderStats::registered(&registry),
            mq: Default::default(),
            listener_stats,
            signatures,
            hub,
            registry,
            scrape,
        }))
    }

    pub(crate) fn db(&self) -> Arc<crate::backfill::archive_db::LazyDb> {
        self.db.clone()
    }

    pub(crate) fn sign(&self, v: &mut serde_json::Value) -> firehose_core::Result<()> {
        self.crypto.sign_obj(v, &self.keys)
    }

    /// Checks a signed HTTP request from `sender` (signature, and the allow-list if on).
    pub(crate) fn verify_request(
        &self,
        v: &serde_json::Value,
        sender: &str,
    ) -> Result<(), auth::AuthError> {
        let fail = |e: auth::AuthError| {
            self.auth_failures.inc();
            e
        };
        self.crypto
            .verify_obj(v)
            .map_err(|e| fail(auth::AuthError::BadSignature(e.to_string())))?;
        let c = self.config();
        if c.limit_to_subscribers_only {
            let now = auth::now_ms();
            let ok = c
                .subscribers
                .iter()
                .any(|s| s.public_key.eq_ignore_ascii_case(sender) && !s.expired(now));
            if !ok {
                return Err(fail(auth::AuthError::NotSubscribed));
            }
        }
        Ok(())
    }

    /// Switches to MQ mode: `/metrics` reports `stats`, websocket subscriptions get 503.
    pub fn attach_mq(&self, stats: Arc<crate::mq::MqStats>) {
        self.scrape.attach_mq(&self.registry, &stats);
        let _ = self.mq.set(stats);
    }

    /// Entries of `t` the live reader has read from the data logs.
    pub fn entries_read(&self, t: DataType) -> u64 {
        self.readers[t.index()].entries.get()
    }

    /// The signing public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    pub(crate) fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().expect("config lock")
    }

    /// Replaces the subscriber settings (reload) and closes sessions no longer allowed with
    /// 1001.
    pub fn update_subscribers(&self, limit: bool, subscribers: Vec<Subscriber>) {
        {
            let mut c = self.config.write().expect("config lock");
            c.limit_to_subscribers_only = limit;
            c.subscribers = subscribers;
        }
        self.close_disallowed();
        // With the allow-list on, only listed keys keep resume points.
        if limit {
            let c = self.config();
            let listed: std::collections::HashSet<PublicKey> = c
                .subscribers
                .iter()
                .filter_map(|s| PublicKey::from_hex(&s.public_key).ok())
                .collect();
            drop(c);
            self.positions.retain(|k| listed.contains(k));
        }
    }

    /// Closes sessions whose subscription expired or was removed (1001).
    pub fn close_disallowed(&self) {
        let c = self.config();
        if !c.limit_to_subscribers_only {
            return;
        }
        let now = auth::now_ms();
        let allowed: Vec<PublicKey> = c
            .subscribers
            .iter()
            .filter(|s| !s.expired(now))
            .filter_map(|s| PublicKey::from_hex(&s.public_key).ok())
            .collect();
        drop(c);
        self.hub.close_where(
            |k| !allowed.contains(k),
            CloseReason {
                code: CLOSE_GOING_AWAY,
                reason: "subscription expired or removed",
            },
        );
    }

    /// Records the rows in the database now (off the async threads, waiting at most 2 s):
    /// the original's JSON `/metrics` counts from there, and the hub's start point (the
    /// newest rows) for sessions that join before the first live entry.
    async fn count_baseline(self: &Arc<Self>) {
        use firehose_dbstore::history::Table;
        let me = self.clone();
        let count = self.db.run(move |db| {
            for (t, table) in [
                (DataType::Cycle, Table::Cycles),
                (DataType::Receipt, Table::Receipts),
                (DataType::OriginalTx, Table::OriginalTxs),
            ] {
                let n = db.history_count(table, None)?;
                me.readers[t.index()].baseline.store(n, Relaxed);
            }
            // Where the stream starts for sessions that join before the first entry.
            let newest = newest_rows(db)?;
            me.hub.seed_start(&newest);
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_secs(2), count).await;
    }

    /// The newest row of each type in the archiver's database, waiting at most 5 s (`None`:
    /// unknown).
    pub(crate) async fn newest_in_db(&self) -> Option<firehose_core::since::Since> {
        let newest = self.db.run(newest_rows);
        match tokio::time::timeout(Duration::from_secs(5), newest).await {
            Ok(Ok(s)) => Some(s),
            _ => None,
        }
    }

    /// The resume point remembered for `key`, when implicit resume is on and a database
    /// can back-fill from it.
    pub fn remembered(&self, key: &PublicKey) -> Option<firehose_core::since::Since> {
        if !self.config().implicit_resume || !self.db.is_configured() {
            return None;
        }
        self.positions.get(key)
    }

    /// Remembers that `key`'s collector has everything up to `since`; `delivered`: something
    /// was delivered to it (strangers that never were are forgotten first). With the
    /// allow-list on, only for listed keys; not at all with implicit resume off.
    pub fn remember(&self, key: PublicKey, since: &firehose_core::since::Since, delivered: bool) {
        {
            let c = self.config();
            if !c.implicit_resume {
                return;
            }
            let hex = key.to_hex();
            if c.limit_to_subscribers_only
                && !c
                    .subscribers
                    .iter()
                    .any(|s| s.public_key.eq_ignore_ascii_case(&hex))
            {
                return;
            }
        }
        self.positions.set(key, since.clone(), delivered);
    }

    /// Resume points remembered now.
    pub fn positions(&self) -> &crate::backfill::positions::Positions {
        &self.positions
    }

    /// Back-fill slots free now.
    pub fn backfill_slots_available(&self) -> usize {
        self.backfill_slots.available()
    }

    /// Serves on `listener` until `shutdown` completes; then closes sessions with 1001.
    pub async fn serve(
        self: &Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.count_baseline().await;
        let state = {
            let c = self.config();
            c.resume_state_file.clone().filter(|_| c.implicit_resume)
        };
        let saver = state.clone().map(|path| {
            crate::backfill::positions_file::spawn_saver(
                self.positions.clone(),
                path,
                crate::backfill::positions::SAVE_EVERY,
            )
        });
        let me = self.clone();
        let limits = {
            let c = self.config();
            crate::http::listener::Limits {
                header_read_timeout: Duration::from_millis(c.header_read_timeout_ms.max(1)),
                max_pending: c.max_pending_connections,
                max_pending_per_peer: c.max_pending_per_address,
                ..crate::http::listener::Limits::default()
            }
        };
        crate::http::listener::serve(
            listener,
            self.router(),
            limits,
            self.listener_stats.clone(),
            async move {
                shutdown.await;
                me.hub.close_where(|_| true, crate::ws::hub::SHUTDOWN);
            },
        )
        .await?;
        // Upgraded connections outlive the HTTP server: give sessions their bounded flush.
        let deadline =
            tokio::time::Instant::now() + crate::ws::hub::SHUTDOWN_FLUSH + Duration::from_secs(1);
        while self
            .live_sessions
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The sessions have handed in their last points: save them.
        if let (Some(saver), Some(path)) = (saver, state) {
            saver.abort();
            crate::backfill::positions_file::save_if_changed(&self.positions, &path).await;
        }
        Ok(())
    }
}

/// The newest row of each type in `db`: a point just after everything it holds (an empty
/// table: before its first row; cycles have no such point).
fn newest_rows(
    db: &firehose_dbstore::ArchiverDb,
) -> firehose_dbstore::Result<firehose_core::since::Since> {
    let before_all = || firehose_core::since::PageKey {
        cycle: 0,
        timestamp: 0,
        id: String::new(),
    };
    Ok(firehose_core::since::Since {
        cycle: db.latest_cycle()?.map(|c| c.counter),
        original_tx: Some(
            db.last_key::<firehose_core::records::OriginalTxData>()?
                .unwrap_or_else(before_all),
        ),
        receipt: Some(
            db.last_key::<firehose_core::records::Receipt>()?
                .unwrap_or_else(before_all),
        ),
    })
}
