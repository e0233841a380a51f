//! `/metrics`: Prometheus text for Prometheus, the original's JSON for clients that ask for
//! JSON (content negotiation on `Accept`: axios' and fetch's defaults get JSON, Prometheus'
//! scrape header and a request with no `Accept` get text).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use firehose_core::records::DataType;

use crate::auth;
use crate::metrics::{Counter, DataTypeLabel, Family, Gauge, GaugeF64, Registry};
use crate::server::Distributor;

/// `GET /metrics`.
pub async fn metrics(State(d): State<Arc<Distributor>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if wants_json(accept) {
        return axum::Json(original_json(&d)).into_response();
    }
    // The text stats the data-log files: off the async threads.
    match tokio::task::spawn_blocking(move || prometheus_text(&d)).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Whether `Accept` prefers JSON: the media range with the highest `q` (the first of equals)
/// is `application/json`, `application/*` or `*/*`. No header: text.
pub fn wants_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut best: Option<(f32, &str)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.is_empty() || q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, media));
        }
    }
    matches!(
        best.map(|(_, m)| m.to_ascii_lowercase()).as_deref(),
        Some("application/json" | "application/*" | "*/*")
    )
}

/// The original's `{cycle|receipt|originalTx: {count, lastUpdationTimestamp}}`: rows in the
/// database when the readers started plus entries read since, and when the last was read.
fn original_json(d: &Distributor) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for t in DataType::ALL {
        let r = &d.readers[t.index()];
        let last = match r.last_read_ms.load(Relaxed) {
            0 => d.started_ms,
            ms => ms,
        };
        out.insert(
            t.log_name().to_owned(),
            serde_json::json!({
                "count": r.baseline.load(Relaxed) + r.entries.get(),
                "lastUpdationTimestamp": last,
            }),
        );
    }
    out.into()
}

/// The gauges set just before a scrape (what describes the present), and counters kept by
/// another crate (the database's seek points), brought up to date then.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    sessions: Gauge,
    resume_positions: Gauge,
    history_seeks: Counter,
    history_walks: Counter,
    file_number: Family<DataTypeLabel, Gauge>,
    offset: Family<DataTypeLabel, Gauge>,
    lag_ms: Family<DataTypeLabel, Gauge>,
    datalog_write: Family<DataTypeLabel, GaugeF64>,
    reader_read: Family<DataTypeLabel, GaugeF64>,
    mq: std::sync::OnceLock<MqScrape>,
}

/// MQ mode's gauges (registered when the publisher starts).
#[derive(Debug, Default)]
struct MqScrape {
    connected: Gauge,
    cursor_cycle: Gauge,
    lag_cycles: Gauge,
}

/// The counters every concern keeps, to be registered with the scrape gauges.
pub(crate) struct Counted<'a> {
    pub(crate) hub: &'a crate::ws::hub::HubMetrics,
    pub(crate) listener: &'a crate::http::listener::ListenerStats,
    pub(crate) implicit: &'a crate::backfill::positions::ImplicitStats,
    pub(crate) evicted: &'a Counter,
    pub(crate) signatures: (&'a Counter, &'a Counter),
    pub(crate) auth_failures: &'a Counter,
    pub(crate) resumes_refused: &'a Counter,
    pub(crate) backfills_yielded: &'a Counter,
}

impl Scrape {
    /// Registers every counter of `c` and the scrape gauges in `r`.
    pub(crate) fn registered(r: &Registry, c: Counted<'_>) -> Scrape {
        let s = Scrape::default();
        let counters: [(&str, &str, &Counter); 18] = [
            ("firehose_distributor_entries_published", "Entries signed and published.", &c.hub.published),
            ("firehose_distributor_deliveries", "Messages queued to sessions.", &c.hub.deliveries),
            ("firehose_distributor_slow_consumer_drops", "Sessions closed because their queue overflowed.", &c.hub.slow_consumer_drops),
            ("firehose_distributor_replaced_sessions", "Sessions replaced by a newer connection with the same key.", &c.hub.replaced),
            ("firehose_distributor_auth_failures", "Refused subscriptions and HTTP requests.", c.auth_failures),
            ("firehose_distributor_connections_refused", "Connections closed at once because too many were not yet websocket sessions.", &c.listener.refused_pending),
            ("firehose_distributor_connections_refused_per_address", "Connections closed at once because too many from their address were not yet websocket sessions.", &c.listener.refused_peer),
            ("firehose_distributor_connections_idle_closed", "Connections closed because they sent nothing within the header-read timeout of being accepted.", &c.listener.idle_closed),
            ("firehose_distributor_accept_errors", "Failed accepts (each followed by a back-off), e.g. out of file descriptors.", &c.listener.accept_errors),
            ("firehose_distributor_resumes_refused", "Resuming sessions closed with 1011 (history unavailable, lapped by the log ring, or no back-fill slot came free); the collector resumes again.", c.resumes_refused),
            ("firehose_distributor_implicit_resumes", "Collectors that subscribed without `since` and were back-filled from where their last connection ended.", &c.implicit.resumes),
            ("firehose_distributor_implicit_resume_entries", "Entries sent by implicit resumes.", &c.implicit.backfilled),
            ("firehose_distributor_resumes_from_replay", "Resuming sessions that caught up from the replay buffer (shared signed bytes: no database back-fill, no slot).", &c.implicit.from_replay),
            ("firehose_distributor_implicit_resumes_cut", "Implicit resumes cut at IMPLICIT_RESUME_MAX (a gap was left and logged).", &c.implicit.cut),
            ("firehose_distributor_resume_positions_evicted", "Remembered collector positions forgotten to stay within RESUME_MAX_KEYS.", c.evicted),
            ("firehose_distributor_backfills_yielded", "Back-fills closed with 4001 because they progressed too slowly while another collector waited for a slot.", c.backfills_yielded),
            ("firehose_distributor_backfill_signatures", "Back-fill messages signed afresh.", c.signatures.1),
            ("firehose_distributor_backfill_signatures_shared", "Back-fill messages whose signature another back-fill had just made (collectors resuming over the same rows).", c.signatures.0),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        r.register(
            "firehose_distributor_history_offset_seeks",
            "History pages by row offset (`start`/`end`) read from where an earlier page ended.",
            s.history_seeks.clone(),
        );
        r.register("firehose_distributor_history_offset_walks", "History pages by row offset read by walking the offset (the first page of a sync, or rows added before it).", s.history_walks.clone());
        r.register(
            "firehose_distributor_sessions",
            "Connected collectors.",
            s.sessions.clone(),
        );
        r.register(
            "firehose_distributor_resume_positions",
            "Collector positions remembered.",
            s.resume_positions.clone(),
        );
        r.register(
            "firehose_distributor_reader_file_number",
            "Number N of the data-log file the reader is in (<name>-logN.txt).",
            s.file_number.clone(),
        );
        r.register(
            "firehose_distributor_reader_offset_bytes",
            "Byte offset of the reader in that file.",
            s.offset.clone(),
        );
        r.register("firehose_distributor_lag_ms", "Now minus the timestamp of the last entry read (cycle start for cycles); -1 before the first.", s.lag_ms.clone());
        r.register(
            "firehose_distributor_datalog_last_write_timestamp_seconds",
            "When the archiver last wrote the data log (mtime of its active file, Unix seconds).",
            s.datalog_write.clone(),
        );
        r.register("firehose_distributor_reader_last_read_timestamp_seconds", "When the reader last read an entry (the process start before the first), Unix seconds.", s.reader_read.clone());
        s
    }

    /// MQ mode: registers the publisher's counters and gauges.
    pub(crate) fn attach_mq(&self, r: &Registry, mq: &crate::mq::MqStats) {
        let gauges = MqScrape::default();
        r.register(
            "firehose_mq_published",
            "Messages published to RabbitMQ.",
            mq.published.clone(),
        );
        r.register(
            "firehose_mq_confirmed",
            "Messages confirmed by the broker.",
            mq.confirmed.clone(),
        );
        r.register(
            "firehose_mq_retried",
            "Messages published again after a nack or a lost connection.",
            mq.retried.clone(),
        );
        r.register(
            "firehose_mq_reconnects",
            "Reconnections to the broker.",
            mq.reconnects.clone(),
        );
        r.register(
            "firehose_mq_connected",
            "1 while connected to the broker.",
            gauges.connected.clone(),
        );
        r.register(
            "firehose_mq_cursor_cycle",
            "Every cycle up to this one is published and confirmed (-1: none yet).",
            gauges.cursor_cycle.clone(),
        );
        r.register(
            "firehose_mq_lag_cycles",
            "Newest cycle in the database minus the cursor.",
            gauges.lag_cycles.clone(),
        );
        let _ = self.mq.set(gauges);
    }
}

/// Sets the scrape gauges from the present state and renders the registry.
fn prometheus_text(d: &Distributor) -> String {
    let s = &d.scrape;
    let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    s.sessions.set(i64_of(d.hub().len() as u64));
    s.resume_positions.set(i64_of(d.positions.len() as u64));
    let seeks = d.db().seek_points();
    s.history_seeks
        .inc_by(seeks.hits().saturating_sub(s.history_seeks.get()));
    s.history_walks
        .inc_by(seeks.misses().saturating_sub(s.history_walks.get()));
    let now = auth::now_ms();
    let dir = d.config().data_log_dir.clone();
    for t in DataType::ALL {
        let r = &d.readers[t.index()];
        let l = DataTypeLabel {
            data_type: t.log_name(),
        };
        s.file_number
            .get_or_create(&l)
            .set(i64_of(r.file_number.load(Relaxed)));
        s.offset
            .get_or_create(&l)
            .set(i64_of(r.offset.load(Relaxed)));
        let lag = match r.last_record_ms.load(Relaxed) {
            0 => -1,
            ms => i64_of(now.saturating_sub(ms)),
        };
        s.lag_ms.get_or_create(&l).set(lag);
        let last_read = match r.last_read_ms.load(Relaxed) {
            0 => d.started_ms,
            ms => ms,
        };
        s.reader_read
            .get_or_create(&l)
            .set(last_read as f64 / 1000.0);
        // No active file (yet, or any more): no sample, rather than an old time.
        match last_write(&dir, t) {
            Some(mtime) => {
                s.datalog_write.get_or_create(&l).set(mtime);
            }
            None => {
                s.datalog_write.remove(&l);
            }
        }
    }
    if let (Some(g), Some(mq)) = (s.mq.get(), d.mq.get()) {
        let through = mq.through_plus_one.load(Relaxed);
        let newest = mq.newest_plus_one.load(Relaxed);
        g.connected.set(i64_of(mq.connected.load(Relaxed)));
        g.cursor_cycle.set(i64_of(through) - 1);
        g.lag_cycles.set(i64_of(newest.saturating_sub(through)));
    }
    d.registry.render()
}

/// When the archiver last wrote data log `t` (the active file's mtime, Unix seconds): a
/// writer well ahead of its reader is a reader that stopped (the `DataLogReaderStalled` alert).
fn last_write(dir: &std::path::Path, t: DataType) -> Option<f64> {
    let files = firehose_logreader::files::LogFiles::new(dir, t.log_name());
    let n = files.read_pointer().ok().flatten()?;
    let modified = std::fs::metadata(files.log_path(n)).ok()?.modified().ok()?;
    Some(
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64(),
    )
}
