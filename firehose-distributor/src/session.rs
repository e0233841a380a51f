//! A collector's websocket: the subscription check at the upgrade, the back-fill of a
//! resuming collector (on a database connection of its own, each send with a deadline), the
//! hand-over to live, and the live loop that sends the hub's shared messages.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::crypto::PublicKey;
use firehose_core::records::DataType;
use firehose_logreader::TailOptions;
use futures::{SinkExt, StreamExt};

use crate::auth;
use crate::hub::CloseReason;
use crate::server::{Distributor, SESSION_MAX_INCOMING, SESSION_READ_BUFFER};

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

pub(crate) async fn upgrade(
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
    ws.read_buffer_size(SESSION_READ_BUFFER)
        .max_message_size(SESSION_MAX_INCOMING)
        .max_frame_size(SESSION_MAX_INCOMING)
        .on_upgrade(move |socket| session(d, socket, accepted.sender, capacity, since, encoding))
}

/// Back-fills a resuming session, then sends the live entries queued meanwhile that the
/// back-fill did not cover. `false` if the socket failed.
async fn backfill_then_handover(
    d: &Arc<Distributor>,
    since: firehose_core::since::Since,
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
        // Written without a flush per message; each write and the flush have the deadline.
        let mut sent = true;
        for msg in batch {
            let m = msg.message(encoding)?;
            match tokio::time::timeout(deadline, sink.feed(m)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    sent = false;
                    break;
                }
            }
        }
        if sent {
            match tokio::time::timeout(deadline, sink.flush()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => {}
            }
        }
        // Like a slow live session: 4001, and the collector resumes later. Dropping the
        // channel ends the back-fill's thread.
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
        if handover.skip(m.key()) {
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
    let skip = h.skip(msg.key());
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
    since: Option<firehose_core::since::Since>,
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
    since: Option<firehose_core::since::Since>,
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
