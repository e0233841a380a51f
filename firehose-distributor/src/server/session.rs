//! A collector's websocket: the subscription check at the upgrade, and the live loop that
//! writes the hub's shared frames (a resuming collector's back-fill and hand-over to live are
//! [`crate::server::session_backfill`]'s).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::crypto::PublicKey;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::auth;
use crate::backfill::positions::Tracker;
use crate::server::acks::Acks;
use crate::server::{Distributor, SESSION_MAX_INCOMING, SESSION_READ_BUFFER};
use crate::ws::frames;
use crate::ws::upgrade::{Connection, NotWebsocket, Upgrade};

pub(crate) use crate::ws::socket::{close_with, SessionWriter as Writer, CLOSE_WAIT};

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

pub(crate) async fn upgrade(
    State(d): State<Arc<Distributor>>,
    Query(q): Query<HashMap<String, String>>,
    fd: Option<axum::Extension<crate::http::listener::SocketFd>>,
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
            d.auth_failures.inc();
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
    // Beyond the original: a collector that sends no `since` is resumed from where its last
    // connection ended, if the distributor remembers it (crate::backfill::positions).
    let (since, implicit) = match since {
        Some(s) => (Some(s), false),
        // `"implicitResume": false`: the collector asks for live only.
        None if !accepted.request.implicit_resume() => (None, false),
        None => match d.remembered(&accepted.sender) {
            Some(p) => {
                tracing::info!(collector = %accepted.sender, since = %serde_json::to_string(&p).unwrap_or_default(), "implicit resume: back-filling from where the last connection ended");
                d.implicit.resumes.inc();
                (Some(p), true)
            }
            None => (None, false),
        },
    };
    // A session replaces the key's point only if it carries that history on (an implicit
    // resume does; a live-only `firehose tail` beside the collector of the same key does not).
    let keeps_position = match (&since, d.positions.get(&accepted.sender)) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(s), Some(r)) => crate::server::acks::continues(s, &r),
    };
    let start = Start {
        key: accepted.sender,
        capacity,
        since,
        implicit,
        encoding,
        acks: Acks {
            fd: fd.map(|axum::Extension(f)| f.0),
            margin: d.config().resume_ack_margin_bytes,
            keeps_position,
        },
    };
    ws.on_upgrade(move |conn| session(d, conn, start))
}

/// What a session starts with.
struct Start {
    key: PublicKey,
    capacity: usize,
    since: Option<firehose_core::since::Since>,
    /// The resume point is the server's (no `since` was sent): paced and limited.
    implicit: bool,
    encoding: firehose_core::codec::Encoding,
    acks: Acks,
}

async fn session(d: Arc<Distributor>, conn: Connection, start: Start) {
    d.live_sessions
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let config = WebSocketConfig::default()
        .read_buffer_size(SESSION_READ_BUFFER)
        .max_message_size(Some(SESSION_MAX_INCOMING))
        .max_frame_size(Some(SESSION_MAX_INCOMING));
    let (incoming, out) = crate::ws::socket::split(conn, config).await;
    run_session(&d, incoming, out, start).await;
    d.live_sessions
        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
}

async fn run_session(
    d: &Arc<Distributor>,
    mut incoming: crate::ws::socket::Incoming<tokio::io::ReadHalf<Connection>>,
    mut out: Writer,
    start: Start,
) {
    let Start {
        key,
        capacity,
        since,
        implicit,
        encoding,
        acks,
    } = start;
    let registered = std::time::Instant::now();
    // A resuming session catches up from the replay buffer before anything is queued to it.
    let catch_up = since.is_some() && d.hub.replay().enabled();
    let mut rx = if catch_up {
        d.hub.register_catching_up(key, capacity)
    } else {
        d.hub.register(key, capacity)
    };
    tracing::info!(collector = %key, id = rx.id, sessions = d.hub.len(), resume = since.is_some(), implicit, "collector connected");
    // What the collector has: its resume point, else where the live stream was.
    let mut tracker = if d.config().implicit_resume {
        Tracker::new(crate::backfill::positions::merge(since.as_ref(), &rx.start))
    } else {
        Tracker::disabled()
    };
    // Remembered at once: a crash before the first update must not lose the start.
    if acks.keeps_position {
        d.remember(key, tracker.delivered(), false);
    }
    let mut handover = None;
    if let Some(since) = since {
        let resume = crate::server::session_backfill::Resume {
            key,
            since,
            registered,
            encoding,
            implicit,
            catch_up,
        };
        let done = crate::server::session_backfill::resume(
            d,
            resume,
            &mut rx,
            &mut out,
            &mut tracker,
            &acks,
        )
        .await;
        acks.hand_over(d, key, &mut tracker, &out);
        match done {
            Ok(h) => handover = h,
            Err(()) => {
                d.hub.unregister(&key, rx.id);
                return;
            }
        }
    }
    // The point is handed over every SAVE_EVERY, also while nothing is written (what was
    // written is acknowledged meanwhile).
    let mut save = tokio::time::interval(crate::backfill::positions::SAVE_EVERY);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            reason = &mut rx.close => {
                if let Ok(r) = reason {
                    tracing::info!(collector = %key, code = r.code, reason = r.reason, "closing session");
                    if r == crate::ws::hub::SHUTDOWN {
                        // Send what is already queued, for a bounded time.
                        while let Ok(m) = rx.messages.try_recv() {
                            if let Some(frame) = m.frame(encoding) {
                                tracker.pushed(&m);
                                out.push(frame);
                            }
                        }
                        let flushed = tokio::time::timeout(crate::ws::hub::SHUTDOWN_FLUSH, out.flush()).await;
                        if matches!(flushed, Ok(Ok(()))) {
                            tracker.flushed(out.written());
                        }
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
                    if crate::server::session_backfill::already_sent(&mut handover, &msg) {
                        continue;
                    }
                    if let Some(frame) = msg.frame(encoding) {
                        tracker.pushed(&msg);
                        out.push(frame);
                    }
                }
            }
            _ = save.tick() => {
                acks.hand_over(d, key, &mut tracker, &out);
                continue;
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
                        close_with(&mut out, firehose_core::protocol::CLOSE_TOO_BIG, "message too big").await;
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
            tracker.flushed(out.written());
        }
    }
    acks.hand_over(d, key, &mut tracker, &out);
    d.hub.unregister(&key, rx.id);
    tracing::info!(collector = %key, "collector disconnected");
}
