//! Why a resuming session stops before it is live, and how the collector is told (the close
//! code says whether and when to come back).

use crate::server::Distributor;
use crate::ws::hub::{CloseReason, CLOSE_SLOW_CONSUMER};
use crate::ws::socket::{close_with, SessionWriter as Writer};

/// Why a running back-fill or catch-up stops early.
pub(crate) enum Stop {
    /// The socket failed.
    Socket,
    /// The hub closed the session (replaced, removed, shutting down).
    Closed(Result<CloseReason, tokio::sync::oneshot::error::RecvError>),
    /// A batch did not leave within the send deadline.
    Stalled,
    /// Too slow while another collector waits for a slot.
    Yield,
    /// The replay buffer does not reach back to the resume point (nothing was sent).
    NotCovered,
    /// The replay buffer dropped what a catch-up had still to send.
    Lapped,
}

/// Ends a back-fill that stopped early, telling the collector why where it can.
pub(crate) async fn stopped<T>(d: &Distributor, out: &mut Writer, stop: Stop) -> Option<T> {
    match stop {
        Stop::Socket | Stop::Closed(Err(_)) => {}
        Stop::NotCovered => {
            close_backfill_failed::<()>(d, out).await;
        }
        Stop::Closed(Ok(reason)) => {
            tracing::info!(
                code = reason.code,
                reason = reason.reason,
                "closing a back-filling session"
            );
            close_with(out, reason.code, reason.reason).await;
        }
        Stop::Lapped => too_slow(d, out, "too slow to catch up; resume later").await,
        Stop::Stalled => too_slow(d, out, "too slow during the back-fill; resume later").await,
        Stop::Yield => {
            d.backfills_yielded.inc();
            too_slow(d, out, "back-fill too slow while others wait; resume later").await;
        }
    }
    None
}

/// Closes a session that does not keep up with 4001 (counted as a slow consumer), like a
/// live one whose queue overflows; the collector resumes later from what it has.
async fn too_slow(d: &Distributor, out: &mut Writer, reason: &'static str) {
    tracing::warn!(reason, "closing a resuming session with 4001");
    d.hub.metrics.slow_consumer_drops.inc();
    close_with(out, CLOSE_SLOW_CONSUMER, reason).await;
}

/// Tells a resuming collector that its back-fill failed (1011: try again later).
pub(crate) async fn close_backfill_failed<T>(d: &Distributor, out: &mut Writer) -> Option<T> {
    d.resumes_refused.inc();
    close_with(
        out,
        firehose_core::protocol::CLOSE_RESUME_LATER,
        "history not available; resume again later",
    )
    .await;
    None
}
