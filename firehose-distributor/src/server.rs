//! The distributor server: one listener for HTTP and the websocket upgrade, one reader per
//! data log, one signature per entry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use firehose_core::message::encode_signed_entry;
use firehose_core::records::{DataType, Record};
use firehose_logreader::{tail_all, LogEvent, StartAt, TailOptions};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::Ordering::Relaxed;
use tokio::net::TcpListener;

use crate::auth::{self, ReplayCache};
use crate::config::{Config, Subscriber};
use crate::hub::{CloseReason, Hub, CLOSE_GOING_AWAY};

/// Pending connections the listener queues (the kernel caps it at `net.core.somaxconn`).
/// Tokio's default of 128 overflows when a thousand collectors reconnect at once (after a
/// restart): the dropped SYNs are retried only after a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Read buffer of a collector session. Collectors only send pings and a close frame; the
/// websocket default (128 KiB, resident once read into) cost 1.3 GiB at 10,000 sessions.
pub const SESSION_READ_BUFFER: usize = 4096;

/// Largest message or frame a collector may send (the default, 64 MiB, would let every
/// session hold that much).
pub const SESSION_MAX_INCOMING: usize = 64 * 1024;

/// Longest time to receive and answer an HTTP request (the websocket upgrade returns at once;
/// the session runs past it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `addr` (`host:port`) for [`Distributor::serve`] with [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr}: no address"))
    }))
}

/// Shared state of a running distributor.
pub struct Distributor {
    crypto: Crypto,
    keys: KeyPair,
    config: RwLock<Config>,
    replay: ReplayCache,
    db: Arc<crate::archive_db::LazyDb>,
    pub(crate) auth_failures: std::sync::atomic::AtomicU64,
    /// Resumes closed with 1011 (history unavailable, or the back-fill lapped by the ring).
    pub(crate) resumes_refused: std::sync::atomic::AtomicU64,
    /// Refused HTTP requests by route and reason.
    pub(crate) refusals: crate::api::Refusals,
    /// When this distributor started (Unix ms).
    pub(crate) started_ms: u64,
    limiter: crate::ratelimit::RateLimiter,
    /// Session tasks still running (they outlive their hub registration while closing).
    live_sessions: std::sync::atomic::AtomicUsize,
    /// Checkpoints of the live readers, for resume scans of the retained logs.
    log_index: crate::logindex::LogIndex,
    /// Per data type: entries read from the logs, and the last entry's position.
    pub(crate) readers: [ReaderStats; 3],
    /// MQ mode's publisher counters, when it runs (websocket subscriptions are refused then).
    pub(crate) mq: std::sync::OnceLock<Arc<crate::mq::MqStats>>,
    /// What the listener refused.
    pub(crate) listener_stats: Arc<crate::listener::ListenerStats>,
    /// The fan-out hub.
    pub hub: Hub,
}

/// What a live reader has done (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct ReaderStats {
    pub(crate) entries: std::sync::atomic::AtomicU64,
    pub(crate) malformed: std::sync::atomic::AtomicU64,
    /// Entries lost because files went away before they were read.
    pub(crate) gaps: std::sync::atomic::AtomicU64,
    pub(crate) file_number: std::sync::atomic::AtomicU64,
    pub(crate) offset: std::sync::atomic::AtomicU64,
    /// Wall-clock ms of the last entry's record timestamp (cycle start for cycles), 0 if none.
    pub(crate) last_record_ms: std::sync::atomic::AtomicU64,
    /// Bytes known lost in gaps (files truncated under the reader).
    pub(crate) gap_bytes: std::sync::atomic::AtomicU64,
    /// Entries forwarded without typed fields ([`firehose_logreader::UntypedEntry`]).
    pub(crate) untyped: std::sync::atomic::AtomicU64,
    /// Entries whose line was not canonical and was re-serialised before signing.
    pub(crate) recanonicalized: std::sync::atomic::AtomicU64,
    /// Wall-clock ms when the last entry was read, 0 if none.
    pub(crate) last_read_ms: std::sync::atomic::AtomicU64,
    /// Rows in the database when the readers started (the original's `/metrics` counts from there).
    pub(crate) baseline: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Distributor {
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
        let db = Arc::new(crate::archive_db::LazyDb::open(layout));
        Ok(Arc::new(Self {
            crypto: config.crypto()?,
            keys: config.keys()?,
            limiter: crate::ratelimit::RateLimiter::new(config.rate_limit, true),
            config: RwLock::new(config),
            replay: ReplayCache::default(),
            db,
            auth_failures: Default::default(),
            resumes_refused: Default::default(),
            refusals: Default::default(),
            started_ms: auth::now_ms(),
            live_sessions: Default::default(),
            log_index: Default::default(),
            readers: Default::default(),
            mq: Default::default(),
            listener_stats: Default::default(),
            hub: Hub::default(),
        }))
    }

    /// Counts an entry read (typed or not) for `/metrics`.
    fn count_read(&self, t: DataType, recanonicalized: bool) {
        let r = &self.readers[t.index()];
        r.entries.fetch_add(1, Relaxed);
        r.recanonicalized
            .fetch_add(u64::from(recanonicalized), Relaxed);
        r.last_read_ms.store(auth::now_ms(), Relaxed);
    }

    /// Signs a canonical entry once and publishes it to every session.
    fn publish_entry(&self, t: DataType, raw: &[u8]) {
        let msg = encode_signed_entry(&self.crypto, &self.keys, t, raw);
        // Entries are canonical JSON, written from parsed values or checked: UTF-8.
        match String::from_utf8(msg) {
            Ok(s) => self
                .hub
                .publish(&crate::hub::Outgoing::new(Utf8Bytes::from(s))),
            Err(_) => tracing::error!("entry is not UTF-8; skipped"),
        }
    }

    fn note_entry(&self, e: &firehose_logreader::LogEntry) {
        let r = &self.readers[e.data_type.index()];
        r.file_number
            .store(u64::from(e.position.file_number), Relaxed);
        r.offset.store(e.position.offset, Relaxed);
        let ms = match &e.record {
            Record::Cycle(c) => c
                .cycle_record
                .get("start")
                .and_then(serde_json::Value::as_u64)
                .map_or(0, |s| s.saturating_mul(1000)),
            Record::OriginalTx(t) => t.timestamp,
            Record::Receipt(r) => r.timestamp,
        };
        r.last_record_ms.store(ms, Relaxed);
    }

    pub(crate) fn db(&self) -> Arc<crate::archive_db::LazyDb> {
        self.db.clone()
    }

    pub(crate) fn sign(&self, v: &mut serde_json::Value) -> firehose_core::Result<()> {
        self.crypto.sign_obj(v, &self.keys)
    }

    /// Checks a signed HTTP request from `sender` (signature, and the allow-list if on).
    pub(crate) fn verify_request(&self, v: &serde_json::Value, sender: &str) -> Result<(), String> {
        let fail = |m: String| {
            self.auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            m
        };
        self.crypto
            .verify_obj(v)
            .map_err(|e| fail(format!("invalid signature: {e}")))?;
        let c = self.config();
        if c.limit_to_subscribers_only {
            let now = auth::now_ms();
            let ok = c
                .subscribers
                .iter()
                .any(|s| s.public_key.eq_ignore_ascii_case(sender) && !s.expired(now));
            if !ok {
                return Err(fail("not a subscriber".into()));
            }
        }
        Ok(())
    }

    /// Switches to MQ mode: `/metrics` reports `stats`, websocket subscriptions get 503.
    pub fn attach_mq(&self, stats: Arc<crate::mq::MqStats>) {
        let _ = self.mq.set(stats);
    }

    /// Entries of `t` the live reader has read from the data logs.
    pub fn entries_read(&self, t: DataType) -> u64 {
        self.readers[t.index()].entries.load(Relaxed)
    }

    /// The signing public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
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

    /// The HTTP + websocket routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(upgrade))
            .route("/health", get(|| async { "OK" }))
            .route("/is-alive", get(|| async { "OK" }))
            .route("/is-healthy", get(|| async { "OK" }))
            .route("/config", get(get_config))
            .route("/metrics", get(crate::metrics::metrics))
            .route("/totalData", axum::routing::post(crate::api::total_data))
            .route("/cycleinfo", axum::routing::post(crate::api::cycle_info))
            .route("/receipt", axum::routing::post(crate::api::receipts))
            .route("/originalTx", axum::routing::post(crate::api::original_txs))
            .route("/account", axum::routing::post(crate::api::accounts))
            .route(
                "/transaction",
                axum::routing::post(crate::api::transactions),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                rate_limit,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
            // A request body that never ends (slow chunks) is cut off.
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(tower_http::cors::CorsLayer::permissive())
            .with_state(self.clone())
    }

    /// Starts one reader per data log (live) and publishes every entry to the hub.
    pub async fn start_readers(
        self: &Arc<Self>,
    ) -> firehose_logreader::Result<tokio::task::JoinHandle<()>> {
        let (dir, poll, max_line) = {
            let c = self.config();
            (
                c.data_log_dir.clone(),
                c.file_stream_interval_ms,
                c.max_log_line_bytes,
            )
        };
        let opts = TailOptions {
            poll_interval: Duration::from_millis(poll.max(10) * 5),
            max_line_bytes: max_line,
            ..TailOptions::default()
        };
        let mut tail = tail_all(&dir, |_| StartAt::Live, opts).await?;
        let me = self.clone();
        Ok(tokio::spawn(async move {
            while let Some(ev) = tail.recv().await {
                match ev {
                    LogEvent::Entry(e) => {
                        me.log_index.entry_read(e.data_type, e.position);
                        me.note_entry(&e);
                        me.count_read(e.data_type, e.recanonicalized);
                        me.publish_entry(e.data_type, &e.raw);
                    }
                    LogEvent::Untyped(u) => {
                        // Forwarded as the original forwards any JSON object; it has no
                        // resume keys, so a resume's log scan passes it over.
                        me.log_index.entry_read(u.data_type, u.position);
                        me.count_read(u.data_type, u.recanonicalized);
                        let r = &me.readers[u.data_type.index()];
                        r.untyped.fetch_add(1, Relaxed);
                        tracing::info!(data_type = %u.data_type, reason = %u.reason, "forwarding a data-log entry that lacks typed fields (live only: resumes skip it)");
                        me.publish_entry(u.data_type, &u.raw);
                    }
                    LogEvent::Malformed(m) => {
                        me.readers[m.data_type.index()]
                            .malformed
                            .fetch_add(1, Relaxed);
                        tracing::warn!(path = %m.path.display(), line = m.line, reason = %m.reason, "skipped a malformed data-log line")
                    }
                    LogEvent::Gap(g) => {
                        let r = &me.readers[g.data_type.index()];
                        r.gaps.fetch_add(1, Relaxed);
                        r.gap_bytes.fetch_add(g.bytes, Relaxed);
                        tracing::error!(data_type = %g.data_type, reason = %g.reason, "data-log gap");
                    }
                }
            }
        }))
    }

    /// Records the rows in the database now (off the async threads, waiting at most 2 s):
    /// the original's JSON `/metrics` counts from there.
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
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_secs(2), count).await;
    }

    /// Serves on `listener` until `shutdown` completes; then closes sessions with 1001.
    pub async fn serve(
        self: &Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.count_baseline().await;
        let me = self.clone();
        let limits = {
            let c = self.config();
            crate::listener::Limits {
                header_read_timeout: Duration::from_millis(c.header_read_timeout_ms.max(1)),
                max_pending: c.max_pending_connections,
                ..crate::listener::Limits::default()
            }
        };
        crate::listener::serve(
            listener,
            self.router(),
            limits,
            self.listener_stats.clone(),
            async move {
                shutdown.await;
                me.hub.close_where(|_| true, crate::hub::SHUTDOWN);
            },
        )
        .await?;
        // Upgraded connections outlive the HTTP server: give sessions their bounded flush.
        let deadline =
            tokio::time::Instant::now() + crate::hub::SHUTDOWN_FLUSH + Duration::from_secs(1);
        while self
            .live_sessions
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Applies `RATE_LIMIT` per client address (loopback exempt) to the HTTP routes.
async fn rate_limit(
    State(d): State<Arc<Distributor>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if d.limiter.allow(peer.ip(), std::time::Instant::now()) {
        next.run(req).await
    } else {
        let route = [
            crate::api::Route::TotalData,
            crate::api::Route::CycleInfo,
            crate::api::Route::Receipt,
            crate::api::Route::OriginalTx,
            crate::api::Route::Account,
            crate::api::Route::Transaction,
        ]
        .into_iter()
        .map(crate::api::Route::path)
        .find(|p| *p == req.uri().path())
        .unwrap_or("other");
        tracing::debug!(route, %peer, "request refused: over RATE_LIMIT");
        d.refusals.count(route, crate::api::Reason::RateLimited);
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response()
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

async fn upgrade(
    State(d): State<Arc<Distributor>>,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::OK,
            "firehose-rs distributor: connect with a websocket and ?data=<signed request>",
        )
            .into_response();
    };
    if d.mq.get().is_some() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this distributor runs in MQ mode: consume its RabbitMQ exchanges",
        )
            .into_response();
    }
    let Some(data) = q.get("data") else {
        return unauthorized();
    };
    let (accepted, capacity) = {
        let c = d.config();
        let r = auth::check(
            data,
            &d.crypto,
            c.limit_to_subscribers_only,
            &c.subscribers,
            &d.replay,
            auth::now_ms(),
        );
        (r, c.client_queue_capacity)
    };
    let accepted = match accepted {
        Ok(a) => a,
        Err(e) => {
            d.auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(error = %e, "refused a subscription");
            return unauthorized();
        }
    };
    let since = match accepted.collector_info.get("since") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match serde_json::from_value::<crate::resume::Since>(v.clone()) {
            Ok(s) if d.db.is_configured() => Some(s),
            Ok(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "since needs an archiver database (ARCHIVER_DB_DIR / ARCHIVER_DB_PATH)",
                )
                    .into_response()
            }
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("collectorInfo.since: {e}"))
                    .into_response()
            }
        },
    };
    let encoding = match accepted
        .collector_info
        .get("encoding")
        .and_then(serde_json::Value::as_str)
    {
        None | Some("json") => firehose_core::codec::Encoding::Json,
        Some("msgpack") => firehose_core::codec::Encoding::MessagePack,
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("collectorInfo.encoding `{other}`: expected json or msgpack"),
            )
                .into_response()
        }
    };
    ws.read_buffer_size(SESSION_READ_BUFFER)
        .max_message_size(SESSION_MAX_INCOMING)
        .max_frame_size(SESSION_MAX_INCOMING)
        .on_upgrade(move |socket| session(d, socket, accepted.sender, capacity, since, encoding))
}

/// Back-fills a resuming session, then sends the live entries queued meanwhile that the
/// back-fill did not cover. `false` if the socket failed.
async fn backfill_then_handover(
    d: &Arc<Distributor>,
    since: crate::resume::Since,
    registered: std::time::Instant,
    rx: &mut crate::hub::SessionRx,
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    encoding: firehose_core::codec::Encoding,
) -> Option<crate::resume::Handover> {
    let db = d.db();
    if !db.is_configured() {
        return Some(crate::resume::Handover::new(since, Default::default()));
    }
    let logs = crate::resume::LogScan {
        dir: d.config().data_log_dir.clone(),
        max_log_files: TailOptions::default().max_log_files,
        start: DataType::ALL.map(|t| d.log_index.scan_start(t, registered)),
    };
    // A back-fill waits on its collector: it reads on a connection of its own, so a
    // collector that stops reading holds nothing anyone else needs.
    let Some(slot) = db.backfill_slot() else {
        tracing::warn!(
            "too many back-fills at once; closing with 1011 so that the collector resumes later"
        );
        return close_backfill_failed(d, sink).await;
    };
    let (btx, mut brx) = tokio::sync::mpsc::channel(256);
    let me = d.clone();
    let point = since.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let db = db.open_own()?;
        crate::resume::backfill(
            &db,
            &me.crypto,
            &me.keys,
            &point,
            Some(&logs),
            Some(&me.log_index),
            &btx,
        )
        .map_err(|e| e.to_string())
    });
    let deadline = d.config().backfill_send_timeout();
    while let Some(msg) = brx.recv().await {
        match tokio::time::timeout(deadline, sink.send(msg.message(encoding)?)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return None,
            Err(_) => {
                // Like a slow live session: 4001, and the collector resumes later. Dropping
                // the channel ends the back-fill's thread.
                tracing::warn!(
                    ?deadline,
                    "back-fill: the collector does not read; closing with 4001"
                );
                d.hub.metrics.slow_consumer_drops.fetch_add(1, Relaxed);
                let frame = CloseFrame {
                    code: crate::hub::CLOSE_SLOW_CONSUMER,
                    reason: "too slow during the back-fill; resume later".into(),
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    sink.send(Message::Close(Some(frame))),
                )
                .await;
                return None;
            }
        }
    }
    let ids = match job.await {
        Ok(Ok(done)) if done.lapped.is_some() => {
            tracing::warn!(
                data_type = ?done.lapped,
                "back-fill lapped by the data-log ring; closing with 1011 so that the collector resumes again"
            );
            return close_backfill_failed(d, sink).await;
        }
        Ok(Ok(done)) => {
            tracing::info!(
                from_db = done.from_db,
                from_logs = done.from_logs,
                "back-fill done"
            );
            done.ids
        }
        // Going on live would leave a gap the collector cannot see: close with 1011, and
        // it resumes from the same point when it reconnects.
        Ok(Err(e)) => {
            tracing::error!(error = %e, "back-fill failed; closing the session with 1011");
            return close_backfill_failed(d, sink).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "back-fill task failed; closing the session with 1011");
            return close_backfill_failed(d, sink).await;
        }
    };
    // Live entries queued during the back-fill: skip what the collector has or was sent.
    let mut handover = crate::resume::Handover::new(since, ids);
    let queued = rx.messages.len();
    for _ in 0..queued {
        let Ok(m) = rx.messages.try_recv() else { break };
        if handover.skip(m.json().as_str()) {
            continue;
        }
        if let Some(msg) = m.message(encoding) {
            sink.feed(msg).await.ok()?;
        }
    }
    sink.flush().await.ok()?;
    Some(handover)
}

/// Tells a resuming collector that its back-fill failed (1011: try again later).
async fn close_backfill_failed(
    d: &Distributor,
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
) -> Option<crate::resume::Handover> {
    d.resumes_refused.fetch_add(1, Relaxed);
    let frame = CloseFrame {
        code: 1011,
        reason: "history not available; resume again later".into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
    None
}

/// After a back-fill, the live reader may still publish entries the collector has (it lags
/// the database a little): the session's [`Handover`](crate::resume::Handover) filter skips
/// them until it retires.
fn already_sent(
    handover: &mut Option<crate::resume::Handover>,
    msg: &crate::hub::Outgoing,
) -> bool {
    let Some(h) = handover else {
        return false;
    };
    let skip = h.skip(msg.json().as_str());
    if h.done() {
        *handover = None;
    }
    skip
}

async fn session(
    d: Arc<Distributor>,
    socket: WebSocket,
    key: PublicKey,
    capacity: usize,
    since: Option<crate::resume::Since>,
    encoding: firehose_core::codec::Encoding,
) {
    d.live_sessions
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    run_session(&d, socket, key, capacity, since, encoding).await;
    d.live_sessions
        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
}

async fn run_session(
    d: &Arc<Distributor>,
    socket: WebSocket,
    key: PublicKey,
    capacity: usize,
    since: Option<crate::resume::Since>,
    encoding: firehose_core::codec::Encoding,
) {
    let registered = std::time::Instant::now();
    let mut rx = d.hub.register(key, capacity);
    tracing::info!(collector = %key, id = rx.id, sessions = d.hub.len(), resume = since.is_some(), "collector connected");
    let (mut sink, mut stream) = socket.split();
    let mut handover = None;
    if let Some(since) = since {
        match backfill_then_handover(d, since, registered, &mut rx, &mut sink, encoding).await {
            Some(h) => handover = Some(h),
            None => {
                d.hub.unregister(&key, rx.id);
                return;
            }
        }
    }
    let close = |r: CloseReason| {
        Message::Close(Some(CloseFrame {
            code: r.code,
            reason: r.reason.into(),
        }))
    };
    loop {
        tokio::select! {
            biased;
            reason = &mut rx.close => {
                if let Ok(r) = reason {
                    tracing::info!(collector = %key, code = r.code, reason = r.reason, "closing session");
                    if r == crate::hub::SHUTDOWN {
                        // Send what is already queued, for a bounded time.
                        let flush = async {
                            while let Ok(m) = rx.messages.try_recv() {
                                if let Some(msg) = m.message(encoding) {
                                    sink.feed(msg).await?;
                                }
                            }
                            sink.flush().await
                        };
                        let _ = tokio::time::timeout(crate::hub::SHUTDOWN_FLUSH, flush).await;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(r))).await;
                }
                break;
            }
            m = rx.messages.recv() => {
                let Some(first) = m else { break };
                // Send what is queued in one flush; stay closable while the socket is blocked.
                let batch = async {
                    let mut next = Some(first);
                    while let Some(msg) = next.take().or_else(|| rx.messages.try_recv().ok()) {
                        if already_sent(&mut handover, &msg) {
                            continue;
                        }
                        if let Some(m) = msg.message(encoding) {
                            sink.feed(m).await?;
                        }
                    }
                    sink.flush().await
                };
                let done = tokio::select! {
                    r = batch => r.is_ok(),
                    reason = &mut rx.close => {
                        if let Ok(r) = reason {
                            tracing::info!(collector = %key, code = r.code, reason = r.reason, "closing blocked session");
                        }
                        false
                    }
                };
                if !done {
                    break;
                }
            }
            incoming = stream.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => {
                    // A message over SESSION_MAX_INCOMING is a capacity error: say so with 1009.
                    use tokio_tungstenite::tungstenite::Error as WsError;
                    let too_big = std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<WsError>())
                        .is_some_and(|w| matches!(w, WsError::Capacity(_)));
                    tracing::info!(collector = %key, error = %e, "bad frame from a collector");
                    if too_big {
                        let r = CloseReason { code: 1009, reason: "message too big" };
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(r))).await;
                    }
                    break;
                }
                Some(Ok(_)) => {} // collectors send nothing; ignore
            }
        }
    }
    d.hub.unregister(&key, rx.id);
    tracing::info!(collector = %key, "collector disconnected");
}

async fn get_config(State(d): State<Arc<Distributor>>) -> Response {
    let c = d.config();
    let mut v = serde_json::json!({"config": {
        "DISTRIBUTOR_IP": c.ip,
        "DISTRIBUTOR_PORT": c.port,
        "DISTRIBUTOR_PUBLIC_KEY": d.keys.public_key().to_hex(),
        "limitToSubscribersOnly": c.limit_to_subscribers_only,
        "subscribers": c.subscribers,
    }});
    drop(c);
    if d.crypto.sign_obj(&mut v, &d.keys).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        firehose_core::canonical::safe_stringify(&v),
    )
        .into_response()
}
