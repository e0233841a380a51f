//! A collector's websocket: the subscription check at the upgrade, the back-fill of a
//! resuming collector (on a database connection of its own, each send with a deadline), the
//! hand-over to live, and the live loop that writes the hub's shared frames.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::crypto::PublicKey;
use firehose_core::records::DataType;
use firehose_logreader::TailOptions;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::auth;
use crate::frames;
use crate::server::{Distributor, SESSION_MAX_INCOMING, SESSION_READ_BUFFER};
use crate::socket::FrameWriter;
use crate::upgrade::{Connection, NotWebsocket, Upgrade};

/// The server's half of a session's socket.
type Writer = FrameWriter<tokio::io::WriteHalf<Connection>>;

/// How long a close frame may take to go out before the socket is dropped anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Queues a close frame and writes what is queued, for at most [`CLOSE_WAIT`].
async fn close_with(out: &mut Writer, code: u16, reason: &str) {
    let _ = tokio::time::timeout(CLOSE_WAIT, out.send(frames::close(code, reason))).await;
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

pub(crate) async fn upgrade(
    State(d): State<Arc<Distributor>>,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<Upgrade, NotWebsocket>,
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
    // Beyond the original: a resume point and the encoding (400 with the reason if bad).
    let (since, encoding) = match (accepted.request.since(), accepted.request.encoding()) {
        (Ok(since), Ok(encoding)) => (since, encoding),
        (Err(e), _) | (_, Err(e)) => {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    if since.is_some() && !d.db.is_configured() {
        return (
            StatusCode::BAD_REQUEST,
            "since needs an archiver database (ARCHIVER_DB_DIR / ARCHIVER_DB_PATH)",
        )
            .into_response();
    }
    ws.on_upgrade(move |conn| session(d, conn, accepted.sender, capacity, since, encoding))
}

/// Back-fills a resuming session, then sends the live entries queued meanwhile that the
/// back-fill did not cover. `false` if the socket failed.
async fn backfill_then_handover(
    d: &Arc<Distributor>,
    since: firehose_core::since::Since,
    registered: std::time::Instant,
    rx: &mut crate::hub::SessionRx,
    out: &mut Writer,
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
        return close_backfill_failed(d, out).await;
    };
    // Two batches in flight: the next one is signed while this one is written.
    let (btx, mut brx) = tokio::sync::mpsc::channel(2);
    let me = d.clone();
    let point = since.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let db = db.open_own()?;
        let signer = crate::resume::Signer {
            crypto: &me.crypto,
            keys: &me.keys,
            cache: &me.signatures,
        };
        crate::resume::backfill(
            &db,
            &signer,
            &point,
            Some(&logs),
            Some(&me.log_index),
            &btx,
            crate::resume::BATCH,
        )
        .map_err(|e| crate::archive_db::DbError::Query(Arc::new(e)))
    });
    let deadline = d.config().backfill_send_timeout();
    while let Some(batch) = brx.recv().await {
        // The batch goes out in as few writes as the socket takes, within the deadline.
        for frame in batch.iter().filter_map(|m| m.frame(encoding)) {
            out.push(frame);
        }
        match tokio::time::timeout(deadline, out.flush()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return None,
            Err(_) => {}
        }
        // Like a slow live session: 4001, and the collector resumes later. Dropping the
        // channel ends the back-fill's thread.
        tracing::warn!(
            ?deadline,
            "back-fill: the collector does not read; closing with 4001"
        );
        d.hub.metrics.slow_consumer_drops.fetch_add(1, Relaxed);
        close_with(
            out,
            crate::hub::CLOSE_SLOW_CONSUMER,
            "too slow during the back-fill; resume later",
        )
        .await;
        return None;
    }
    let ids = match job.await {
        Ok(Ok(done)) if done.lapped.is_some() => {
            tracing::warn!(
                data_type = ?done.lapped,
                "back-fill lapped by the data-log ring; closing with 1011 so that the collector resumes again"
            );
            return close_backfill_failed(d, out).await;
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
            return close_backfill_failed(d, out).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "back-fill task failed; closing the session with 1011");
            return close_backfill_failed(d, out).await;
        }
    };
    // Live entries queued during the back-fill: skip what the collector has or was sent.
    let mut handover = crate::resume::Handover::new(since, ids);
    let queued = rx.messages.len();
    for _ in 0..queued {
        let Ok(m) = rx.messages.try_recv() else { break };
        if handover.skip(m.key()) {
            continue;
        }
        if let Some(frame) = m.frame(encoding) {
            out.push(frame);
        }
    }
    out.flush().await.ok()?;
    Some(handover)
}

/// Tells a resuming collector that its back-fill failed (1011: try again later).
async fn close_backfill_failed(
    d: &Distributor,
    out: &mut Writer,
) -> Option<crate::resume::Handover> {
    d.resumes_refused.fetch_add(1, Relaxed);
    close_with(out, 1011, "history not available; resume again later").await;
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
    let skip = h.skip(msg.key());
    if h.done() {
        *handover = None;
    }
    skip
}

async fn session(
    d: Arc<Distributor>,
    conn: Connection,
    key: PublicKey,
    capacity: usize,
    since: Option<firehose_core::since::Since>,
    encoding: firehose_core::codec::Encoding,
) {
    d.live_sessions
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let config = WebSocketConfig::default()
        .read_buffer_size(SESSION_READ_BUFFER)
        .max_message_size(Some(SESSION_MAX_INCOMING))
        .max_frame_size(Some(SESSION_MAX_INCOMING));
    let (incoming, out) = crate::socket::split(conn, config).await;
    run_session(&d, incoming, out, key, capacity, since, encoding).await;
    d.live_sessions
        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
}

async fn run_session(
    d: &Arc<Distributor>,
    mut incoming: crate::socket::Incoming<tokio::io::ReadHalf<Connection>>,
    mut out: Writer,
    key: PublicKey,
    capacity: usize,
    since: Option<firehose_core::since::Since>,
    encoding: firehose_core::codec::Encoding,
) {
    let registered = std::time::Instant::now();
    let mut rx = d.hub.register(key, capacity);
    tracing::info!(collector = %key, id = rx.id, sessions = d.hub.len(), resume = since.is_some(), "collector connected");
    let mut handover = None;
    if let Some(since) = since {
        match backfill_then_handover(d, since, registered, &mut rx, &mut out, encoding).await {
            Some(h) => handover = Some(h),
            None => {
                d.hub.unregister(&key, rx.id);
                return;
            }
        }
    }
    loop {
        tokio::select! {
            biased;
            reason = &mut rx.close => {
                if let Ok(r) = reason {
                    tracing::info!(collector = %key, code = r.code, reason = r.reason, "closing session");
                    if r == crate::hub::SHUTDOWN {
                        // Send what is already queued, for a bounded time.
                        while let Ok(m) = rx.messages.try_recv() {
                            if let Some(frame) = m.frame(encoding) {
                                out.push(frame);
                            }
                        }
                        let _ = tokio::time::timeout(crate::hub::SHUTDOWN_FLUSH, out.flush()).await;
                    }
                    close_with(&mut out, r.code, r.reason).await;
                }
                break;
            }
            m = rx.messages.recv() => {
                let Some(first) = m else { break };
                // What is queued goes out together, in as few writes as the socket takes.
                let mut next = Some(first);
                while let Some(msg) = next.take().or_else(|| rx.messages.try_recv().ok()) {
                    if already_sent(&mut handover, &msg) {
                        continue;
                    }
                    if let Some(frame) = msg.frame(encoding) {
                        out.push(frame);
                    }
                }
            }
            m = incoming.next() => match m {
                None => break,
                Some(Ok(Message::Close(frame))) => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, out.send(frames::close_reply(frame.as_ref()))).await;
                    break;
                }
                Some(Ok(Message::Ping(data))) => out.push(frames::pong(&data)),
                Some(Ok(_)) => {} // collectors send nothing else; ignore
                Some(Err(e)) => {
                    tracing::info!(collector = %key, error = %e, "bad frame from a collector");
                    // A message over SESSION_MAX_INCOMING is a capacity error: say so with 1009.
                    if matches!(e, WsError::Capacity(_)) {
                        close_with(&mut out, 1009, "message too big").await;
                    }
                    break;
                }
            }
        }
        if out.queued() > 0 {
            // Stay closable while the socket is blocked (the hub closes a session whose
            // queue overflows).
            let written = tokio::select! {
                r = out.flush() => r.is_ok(),
                reason = &mut rx.close => {
                    if let Ok(r) = reason {
                        tracing::info!(collector = %key, code = r.code, reason = r.reason, "closing blocked session");
                    }
                    false
                }
            };
            if !written {
                break;
            }
        }
    }
    d.hub.unregister(&key, rx.id);
    tracing::info!(collector = %key, "collector disconnected");
}
