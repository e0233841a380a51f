//! The back-fill of a resuming session and its hand-over to live.
//!
//! The back-fill reads on a database connection of its own, in a slot of
//! [`crate::backfill::slots`], and writes batch by batch. While it runs the session stays
//! closable: a newer session of the same key (1000), a removed subscriber or a shutdown (1001)
//! closes it at once, with its close frame, and gives the slot back. Each batch must leave
//! within `BACKFILL_SEND_TIMEOUT_MS`, and while another collector waits for a slot the
//! back-fill must keep `BACKFILL_MIN_BYTES_PER_SEC`; otherwise the session is closed with
//! 4001, like a slow live one, and the collector resumes later from what it has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use firehose_core::codec::Encoding;
use firehose_core::crypto::PublicKey;
use firehose_core::records::DataType;
use firehose_core::since::Since;
use firehose_logreader::TailOptions;

use crate::backfill::positions::Tracker;
use crate::backfill::resume::Handover;
use crate::backfill::slots::Progress;
use crate::server::stop::{close_backfill_failed, stopped, Stop};
use crate::server::Distributor;
use crate::ws::hub::SessionRx;
use crate::ws::socket::SessionWriter as Writer;

/// How often a running back-fill checks its deadlines and its progress.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a resuming session asked for.
pub(crate) struct Resume {
    /// The collector.
    pub key: PublicKey,
    /// Where it resumes from.
    pub since: Since,
    /// When its session joined the hub (live entries from then on are queued).
    pub registered: Instant,
    /// Its wire format.
    pub encoding: Encoding,
    /// The resume point is the server's memory (no `since` was sent): paced at
    /// `IMPLICIT_RESUME_RATE` and cut at `IMPLICIT_RESUME_MAX` entries.
    pub implicit: bool,
    /// The session was registered as catching up ([`crate::server::catchup`]): nothing is
    /// queued to it until it attaches.
    pub catch_up: bool,
}

impl Resume {
    /// Entries a second (0: unpaced) and most entries it sends: `IMPLICIT_RESUME_RATE` and
    /// `IMPLICIT_RESUME_MAX` for an implicit resume, no limit for one with `since`.
    fn pace(&self, d: &Distributor) -> (u64, u64) {
        if self.implicit {
            let c = d.config();
            (c.implicit_resume_rate, c.implicit_resume_max)
        } else {
            (0, u64::MAX)
        }
    }
}

/// Takes a resuming session to live: from the replay buffer when it reaches back far enough
/// (no slot, no database), else a database back-fill first and the buffer after it.
/// `Ok(filter)`: live now, skipping what `filter` says was sent; `Err(())`: the session
/// ended (closed as it should be).
pub(crate) async fn resume(
    d: &Arc<Distributor>,
    r: Resume,
    rx: &mut SessionRx,
    out: &mut Writer,
    tracker: &mut Tracker,
    acks: &crate::server::acks::Acks,
) -> Result<Option<Handover>, ()> {
    if !r.catch_up {
        return match backfill_then_handover(d, r, rx, out, tracker, acks).await {
            Some((h, _)) => Ok(Some(h)),
            None => Err(()),
        };
    }
    let (rate, max) = r.pace(d);
    let mut from = crate::server::catchup::From {
        key: r.key,
        since: crate::backfill::positions::merge(Some(&r.since), &rx.start),
        sent: None,
        rate,
        max,
        implicit: r.implicit,
        encoding: r.encoding,
    };
    match crate::server::catchup::from_replay(d, &mut from, rx, out, tracker, acks).await {
        Ok(n) => {
            d.implicit.from_replay.inc();
            tracing::info!(collector = %r.key, sent = n, "caught up from the replay buffer; live");
            // Live entries at or before the point are skipped too (a collector that resumes
            // from another distributor may be ahead of this one's readers).
            return Ok(Some(Handover::new(from.since, Default::default())));
        }
        Err(Stop::NotCovered) => {}
        Err(stop) => {
            stopped::<()>(d, out, stop).await;
            return Err(());
        }
    }
    let Some((handover, reached)) = backfill_then_handover(d, r, rx, out, tracker, acks).await
    else {
        return Err(());
    };
    from.since = crate::backfill::positions::merge(Some(&reached), &rx.start);
    from.sent = Some(handover);
    match crate::server::catchup::from_replay(d, &mut from, rx, out, tracker, acks).await {
        Ok(_) => Ok(from.sent),
        Err(Stop::NotCovered) => {
            close_backfill_failed::<()>(d, out).await;
            Err(())
        }
        Err(stop) => {
            stopped::<()>(d, out, stop).await;
            Err(())
        }
    }
}

/// Back-fills a resuming session, then sends the live entries queued meanwhile that the
/// back-fill did not cover (none for a session that catches up). `None` if the session
/// ended (closed as it should be); else the filter for what follows, and the point reached.
async fn backfill_then_handover(
    d: &Arc<Distributor>,
    r: Resume,
    rx: &mut SessionRx,
    out: &mut Writer,
    tracker: &mut Tracker,
    acks: &crate::server::acks::Acks,
) -> Option<(Handover, Since)> {
    let db = d.db();
    if !db.is_configured() {
        return Some((Handover::new(r.since.clone(), Default::default()), r.since));
    }
    let logs = crate::backfill::resume::LogScan {
        dir: d.config().data_log_dir.clone(),
        max_log_files: TailOptions::default().max_log_files,
        start: DataType::ALL.map(|t| d.log_index.scan_start(t, r.registered)),
    };
    let slot = tokio::select! {
        s = d.backfill_slots.acquire(r.key) => s,
        c = &mut rx.close => return stopped(d, out, Stop::Closed(c)).await,
    };
    let Some(slot) = slot else {
        tracing::warn!(
            collector = %r.key,
            "no back-fill slot came free; closing with 1011 so that the collector resumes later"
        );
        return close_backfill_failed(d, out).await;
    };
    // Two batches in flight: the next one is signed while this one is written.
    let (btx, mut brx) = tokio::sync::mpsc::channel(2);
    let me = d.clone();
    let point = r.since.clone();
    let (rate, limit) = r.pace(d);
    let job = tokio::task::spawn_blocking(move || {
        let db = db.open_own()?;
        let signer = crate::backfill::resume::Signer {
            crypto: &me.crypto,
            keys: &me.keys,
            cache: &me.signatures,
        };
        crate::backfill::resume::backfill_limited(
            &db,
            &signer,
            &point,
            Some(&logs),
            Some(&me.log_index),
            &btx,
            crate::backfill::resume::BATCH.min(usize::try_from(rate).unwrap_or(usize::MAX).max(1)),
            limit,
        )
        .map_err(|e| crate::backfill::archive_db::DbError::Query(Arc::new(e)))
    });
    let sending = Sending {
        key: r.key,
        encoding: r.encoding,
        rate,
        implicit: r.implicit,
    };
    if let Err(stop) = send_batches(d, &mut brx, rx, out, tracker, sending, acks).await {
        // The slot goes back before the close frame waits on the socket; dropping the
        // channel ends the back-fill's thread at its next batch.
        drop(slot);
        return stopped(d, out, stop).await;
    }
    let (ids, reached) = match job.await {
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
            if done.cut {
                d.implicit.cut.inc();
                tracing::warn!(
                    collector = %r.key,
                    sent = done.from_db + done.from_logs,
                    gap_after = %serde_json::to_string(&done.reached).unwrap_or_default(),
                    "implicit resume cut at IMPLICIT_RESUME_MAX: going live; the entries after `gap_after` up to the live point are not sent (the collector's own sync catches up when it restarts)"
                );
            }
            (done.ids, done.reached)
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
    drop(slot);
    // Live entries queued during the back-fill: skip what the collector has or was sent.
    let mut handover = Handover::new(r.since, ids);
    let queued = rx.messages.len();
    for _ in 0..queued {
        let Ok(m) = rx.messages.try_recv() else { break };
        if handover.skip(m.key()) {
            continue;
        }
        if let Some(frame) = m.frame(r.encoding) {
            tracker.pushed(&m);
            out.push(frame);
        }
    }
    out.flush().await.ok()?;
    tracker.flushed(out.written());
    Some((handover, reached))
}

/// How a back-fill's batches go out.
struct Sending {
    key: PublicKey,
    encoding: Encoding,
    /// Entries a second (0: unpaced).
    rate: u64,
    /// An implicit resume (its entries are counted apart).
    implicit: bool,
}

/// Writes the back-fill's batches as they come, watching the session's close signal, the
/// send deadline and (when contended, and not paced by us) the progress rate.
async fn send_batches(
    d: &Distributor,
    brx: &mut tokio::sync::mpsc::Receiver<Vec<crate::ws::hub::Shared>>,
    rx: &mut SessionRx,
    out: &mut Writer,
    tracker: &mut Tracker,
    how: Sending,
    acks: &crate::server::acks::Acks,
) -> Result<(), Stop> {
    let mut saved_at = Instant::now();
    let (deadline, min_rate) = {
        let c = d.config();
        (c.backfill_send_timeout(), c.backfill_min_bytes_per_sec)
    };
    let started = Instant::now();
    let mut sent = 0u64;
    let mut progress = Progress::default();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Checked every tick: the progress sample, then whether this back-fill must yield (a
    // paced one is slow by our choice, and keeps its slot).
    let must_yield = |progress: &mut Progress| {
        let now = Instant::now();
        progress.sample(now);
        how.rate == 0 && d.backfill_slots.contended() && progress.too_slow(now, min_rate)
    };
    loop {
        let batch = tokio::select! {
            b = brx.recv() => match b {
                Some(b) => b,
                None => return Ok(()),
            },
            c = &mut rx.close => return Err(Stop::Closed(c)),
            _ = tick.tick() => {
                if must_yield(&mut progress) {
                    return Err(Stop::Yield);
                }
                continue;
            }
        };
        let mut bytes = 0u64;
        // The batch goes out in as few writes as the socket takes, within the deadline.
        for m in &batch {
            if let Some(frame) = m.frame(how.encoding) {
                bytes += frame.len() as u64;
                tracker.pushed(m);
                out.push(frame);
            }
        }
        let sent_at = Instant::now();
        loop {
            tokio::select! {
                // A flush cut short resumes from the same byte.
                w = out.flush() => match w {
                    Ok(()) => break,
                    Err(_) => return Err(Stop::Socket),
                },
                c = &mut rx.close => return Err(Stop::Closed(c)),
                _ = tick.tick() => {
                    if sent_at.elapsed() >= deadline {
                        return Err(Stop::Stalled);
                    }
                    if must_yield(&mut progress) {
                        return Err(Stop::Yield);
                    }
                }
            }
        }
        tracker.flushed(out.written());
        // The point moves forward as the collector acknowledges: a retry never starts over.
        if saved_at.elapsed() >= crate::backfill::positions::SAVE_EVERY {
            acks.hand_over(d, how.key, tracker, out);
            saved_at = Instant::now();
        }
        progress.wrote(bytes);
        sent += batch.len() as u64;
        if how.implicit {
            d.implicit.backfilled.inc_by(batch.len() as u64);
        }
        if how.rate > 0 {
            // Paced: the next batch leaves when the rate allows, the session still closable.
            let due = started + Duration::from_secs_f64(sent as f64 / how.rate as f64);
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                c = &mut rx.close => return Err(Stop::Closed(c)),
            }
        }
    }
}

/// After a back-fill, the live reader may still publish entries the collector has (it lags
/// the database a little): the session's [`Handover`] filter skips them until it retires.
pub(crate) fn already_sent(
    handover: &mut Option<Handover>,
    msg: &crate::ws::hub::Outgoing,
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
