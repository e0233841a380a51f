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
use crate::server::readers::ReaderStats;
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
                "text/plain; version=0.0.4; charset=utf-8",
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
                "count": r.baseline.load(Relaxed) + r.entries.load(Relaxed),
                "lastUpdationTimestamp": last,
            }),
        );
    }
    out.into()
}

fn prometheus_text(d: &Distributor) -> String {
    let m = &d.hub.metrics;
    let rows = [
        (
            "firehose_distributor_sessions",
            "gauge",
            "Connected collectors.",
            d.hub.len() as u64,
        ),
        (
            "firehose_distributor_entries_published_total",
            "counter",
            "Entries signed and published.",
            m.published.load(Relaxed),
        ),
        (
            "firehose_distributor_deliveries_total",
            "counter",
            "Messages queued to sessions.",
            m.deliveries.load(Relaxed),
        ),
        (
            "firehose_distributor_slow_consumer_drops_total",
            "counter",
            "Sessions closed because their queue overflowed.",
            m.slow_consumer_drops.load(Relaxed),
        ),
        (
            "firehose_distributor_replaced_sessions_total",
            "counter",
            "Sessions replaced by a newer connection with the same key.",
            m.replaced.load(Relaxed),
        ),
        (
            "firehose_distributor_auth_failures_total",
            "counter",
            "Refused subscriptions and HTTP requests.",
            d.auth_failures.load(Relaxed),
        ),
        (
            "firehose_distributor_connections_refused_total",
            "counter",
            "Connections closed at once because too many were not yet websocket sessions.",
            d.listener_stats.refused_pending.load(Relaxed),
        ),
        (
            "firehose_distributor_connections_refused_per_address_total",
            "counter",
            "Connections closed at once because too many from their address were not yet websocket sessions.",
            d.listener_stats.refused_peer.load(Relaxed),
        ),
        (
            "firehose_distributor_connections_idle_closed_total",
            "counter",
            "Connections closed because they sent nothing within the header-read timeout of being accepted.",
            d.listener_stats.idle_closed.load(Relaxed),
        ),
        (
            "firehose_distributor_accept_errors_total",
            "counter",
            "Failed accepts (each followed by a back-off), e.g. out of file descriptors.",
            d.listener_stats.accept_errors.load(Relaxed),
        ),
        (
            "firehose_distributor_resumes_refused_total",
            "counter",
            "Resuming sessions closed with 1011 (history unavailable, lapped by the log ring, or no back-fill slot came free); the collector resumes again.",
            d.resumes_refused.load(Relaxed),
        ),
        (
            "firehose_distributor_implicit_resumes_total",
            "counter",
            "Collectors that subscribed without `since` and were back-filled from where their last connection ended.",
            d.implicit.resumes.load(Relaxed),
        ),
        (
            "firehose_distributor_implicit_resume_entries_total",
            "counter",
            "Entries sent by implicit resumes.",
            d.implicit.backfilled.load(Relaxed),
        ),
        (
            "firehose_distributor_implicit_resumes_cut_total",
            "counter",
            "Implicit resumes cut at IMPLICIT_RESUME_MAX (a gap was left and logged).",
            d.implicit.cut.load(Relaxed),
        ),
        (
            "firehose_distributor_resume_positions_evicted_total",
            "counter",
            "Remembered collector positions forgotten to stay within RESUME_MAX_KEYS.",
            d.positions.evicted.load(Relaxed),
        ),
        (
            "firehose_distributor_resume_positions",
            "gauge",
            "Collector positions remembered.",
            d.positions.len() as u64,
        ),
        (
            "firehose_distributor_backfills_yielded_total",
            "counter",
            "Back-fills closed with 4001 because they progressed too slowly while another collector waited for a slot.",
            d.backfills_yielded.load(Relaxed),
        ),
        (
            "firehose_distributor_backfill_signatures_total",
            "counter",
            "Back-fill messages signed afresh.",
            d.signatures.misses(),
        ),
        (
            "firehose_distributor_backfill_signatures_shared_total",
            "counter",
            "Back-fill messages whose signature another back-fill had just made (collectors resuming over the same rows).",
            d.signatures.hits(),
        ),
        (
            "firehose_distributor_history_offset_seeks_total",
            "counter",
            "History pages by row offset (`start`/`end`) read from where an earlier page ended.",
            d.db().seek_points().hits(),
        ),
        (
            "firehose_distributor_history_offset_walks_total",
            "counter",
            "History pages by row offset read by walking the offset (the first page of a sync, or rows added before it).",
            d.db().seek_points().misses(),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        crate::metrics::write_metric(&mut out, name, kind, help, value);
    }
    let now = auth::now_ms();
    type Metric<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&ReaderStats) -> i64);
    let per_type: [Metric<'_>; 9] = [
        (
            "firehose_distributor_reader_gap_bytes_total",
            "counter",
            "Bytes known lost in gaps (a data-log file truncated under the reader).",
            &|r| r.gap_bytes.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_untyped_total",
            "counter",
            "Entries forwarded as they are because typed fields are missing or null (live only: resumes skip them).",
            &|r| r.untyped.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_recanonicalized_total",
            "counter",
            "Entries whose line was not canonical JSON and was re-serialised before signing.",
            &|r| r.recanonicalized.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_entries_total",
            "counter",
            "Entries read from the data log.",
            &|r| r.entries.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_malformed_total",
            "counter",
            "Malformed data-log lines skipped.",
            &|r| r.malformed.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_gaps_total",
            "counter",
            "Times the reader found data-log files gone before it read them (entries lost).",
            &|r| r.gaps.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_file_number",
            "gauge",
            "Number N of the data-log file the reader is in (<name>-logN.txt).",
            &|r| r.file_number.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_reader_offset_bytes",
            "gauge",
            "Byte offset of the reader in that file.",
            &|r| r.offset.load(Relaxed) as i64,
        ),
        (
            "firehose_distributor_lag_ms",
            "gauge",
            "Now minus the timestamp of the last entry read (cycle start for cycles); -1 before the first.",
            &|r| match r.last_record_ms.load(Relaxed) {
                0 => -1,
                ms => now.saturating_sub(ms) as i64,
            },
        ),
    ];
    for (name, kind, help, value) in per_type {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for t in DataType::ALL {
            let v = value(&d.readers[t.index()]);
            out.push_str(&format!("{name}{{data_type=\"{}\"}} {v}\n", t.log_name()));
        }
    }
    data_log_times(d, &mut out);
    d.refusals.render(&mut out);
    if let Some(mq) = d.mq.get() {
        out.push_str(&mq.render());
    }
    out
}

/// When the archiver last wrote each data log (the active file's mtime) and when its reader
/// last read an entry (the process start before the first): a writer well ahead of its
/// reader is a reader that stopped (the `DataLogReaderStalled` alert).
fn data_log_times(d: &Distributor, out: &mut String) {
    use firehose_logreader::files::LogFiles;
    let dir = d.config().data_log_dir.clone();
    let secs = |ms: u64| ms as f64 / 1000.0;
    out.push_str(
        "# HELP firehose_distributor_datalog_last_write_timestamp_seconds When the archiver last wrote the data log (mtime of its active file, Unix seconds).\n\
         # TYPE firehose_distributor_datalog_last_write_timestamp_seconds gauge\n",
    );
    for t in DataType::ALL {
        let files = LogFiles::new(&dir, t.log_name());
        let mtime = files
            .read_pointer()
            .ok()
            .flatten()
            .and_then(|n| std::fs::metadata(files.log_path(n)).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok());
        if let Some(m) = mtime {
            let name = t.log_name();
            let v = m.as_secs_f64();
            out.push_str(&format!(
                "firehose_distributor_datalog_last_write_timestamp_seconds{{data_type=\"{name}\"}} {v}\n"
            ));
        }
    }
    out.push_str(
        "# HELP firehose_distributor_reader_last_read_timestamp_seconds When the reader last read an entry (the process start before the first), Unix seconds.\n\
         # TYPE firehose_distributor_reader_last_read_timestamp_seconds gauge\n",
    );
    for t in DataType::ALL {
        let last = match d.readers[t.index()].last_read_ms.load(Relaxed) {
            0 => d.started_ms,
            ms => ms,
        };
        let name = t.log_name();
        out.push_str(&format!(
            "firehose_distributor_reader_last_read_timestamp_seconds{{data_type=\"{name}\"}} {}\n",
            secs(last)
        ));
    }
}
