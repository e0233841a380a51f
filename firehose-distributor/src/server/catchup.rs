//! A resuming session's catch-up from the replay buffer ([`crate::ws::replay`]), then live.
//!
//! The session is registered with the hub as catching up: nothing is queued to it, so a long
//! catch-up can never overflow its live queue. It reads the buffer in chunks from the oldest
//! message held, sends what its collector lacks (the same shared frames every session
//! sends), and when it has read everything published it attaches to the hub at exactly that
//! seq ([`crate::ws::hub::Hub::attach`]): no gap, no duplicate, no slot, no thread, no
//! database.
//!
//! Pacing (implicit resumes, for collectors without back-pressure) applies to the backlog
//! only: the session may send `rate` entries a second *plus* whatever was published since it
//! started, so it reaches live at any archiver rate. Its remembered point moves forward as
//! its collector acknowledges, so a retry never starts over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use firehose_core::codec::Encoding;
use firehose_core::crypto::PublicKey;
use firehose_core::since::Since;

use crate::backfill::positions::Tracker;
use crate::backfill::resume::Handover;
use crate::server::acks::Acks;
use crate::server::stop::Stop;
use crate::server::Distributor;
use crate::ws::hub::SessionRx;
use crate::ws::socket::SessionWriter as Writer;

/// Messages read from the buffer at a time.
const CHUNK: usize = 256;

/// Longest sleep of a paced catch-up before it looks again (the close signal is watched).
const PACE_TICK: Duration = Duration::from_millis(100);

/// What a catch-up starts from.
pub(crate) struct From {
    /// The collector.
    pub key: PublicKey,
    /// Its point in every type (nothing at or before it is sent).
    pub since: Since,
    /// Entries a back-fill already sent (skipped), if one ran first.
    pub sent: Option<Handover>,
    /// Backlog entries a second (0: as fast as the collector reads).
    pub rate: u64,
    /// Most entries to send (`IMPLICIT_RESUME_MAX` for an implicit resume): past it the
    /// rest of the backlog is skipped, the cut logged and counted, and the session goes live.
    pub max: u64,
    /// An implicit resume (its entries are counted apart).
    pub implicit: bool,
    /// Its wire format.
    pub encoding: Encoding,
}

/// Catches the session up from the buffer and attaches it to the live stream. `Ok(n)`: live
/// now, after `n` messages; [`Stop::NotCovered`] before anything was sent when the buffer
/// does not reach back to `since`.
pub(crate) async fn from_replay(
    d: &Arc<Distributor>,
    from: &mut From,
    rx: &mut SessionRx,
    out: &mut Writer,
    tracker: &mut Tracker,
    acks: &Acks,
) -> Result<u64, Stop> {
    let replay = d.hub().replay();
    let Some(mut cursor) = replay.covers(&from.since) else {
        return Err(Stop::NotCovered);
    };
    let deadline = d.config().backfill_send_timeout();
    let started = Instant::now();
    let head0 = replay.next_seq();
    let mut sent = 0u64;
    let mut saved_at = Instant::now();
    let mut cut = false;
    loop {
        let chunk = replay.read(cursor, CHUNK).map_err(|_| Stop::Lapped)?;
        if chunk.is_empty() {
            if d.hub().attach(&from.key, rx.id, cursor) {
                return Ok(sent);
            }
            continue; // published meanwhile: read that first
        }
        cursor += chunk.len() as u64;
        let mut n = 0u64;
        for m in &chunk {
            // An entry without a key is live-only (resumes skip it).
            let Some(k) = m.key() else { continue };
            if from.since.has(k) || from.sent.as_mut().is_some_and(|h| h.skip(Some(k))) {
                continue;
            }
            if sent + n >= from.max {
                if !cut {
                    cut = true;
                    d.implicit.cut.inc();
                    tracing::warn!(collector = %from.key, sent = sent + n, gap_after = %serde_json::to_string(&tracker.delivered()).unwrap_or_default(), "implicit resume cut at IMPLICIT_RESUME_MAX: going live; the rest of the backlog is not sent (the collector's own sync catches up when it restarts)");
                }
                continue;
            }
            if let Some(frame) = m.frame(from.encoding) {
                tracker.pushed(m);
                out.push(frame);
                n += 1;
            }
        }
        if n > 0 {
            let flushed = tokio::select! {
                w = tokio::time::timeout(deadline, out.flush()) => match w {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Stop::Socket),
                    Err(_) => Err(Stop::Stalled),
                },
                c = &mut rx.close => Err(Stop::Closed(c)),
            };
            flushed?;
            tracker.flushed(out.written());
            sent += n;
            if from.implicit {
                d.implicit.backfilled.inc_by(n);
            }
        }
        if saved_at.elapsed() >= crate::backfill::positions::SAVE_EVERY {
            acks.hand_over(d, from.key, tracker, out);
            saved_at = Instant::now();
        }
        if from.rate > 0 {
            pace(d, from.rate, started, head0, sent, rx).await?;
        }
    }
}

/// Waits until a paced catch-up may send more: `rate` a second plus everything published
/// since it started (the close signal is watched meanwhile).
async fn pace(
    d: &Distributor,
    rate: u64,
    started: Instant,
    head0: u64,
    sent: u64,
    rx: &mut SessionRx,
) -> Result<(), Stop> {
    loop {
        let arrived = d.hub().replay().next_seq().saturating_sub(head0);
        let backlog_sent = sent.saturating_sub(arrived);
        let due = started + Duration::from_secs_f64(backlog_sent as f64 / rate as f64);
        let now = Instant::now();
        if due <= now {
            return Ok(());
        }
        let wait = (due - now).min(PACE_TICK);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            c = &mut rx.close => return Err(Stop::Closed(c)),
        }
    }
}
