//! What a session hands over as its collector's position: the messages whose last byte the
//! collector's TCP acknowledged ([`crate::backfill::positions`]).

use firehose_core::crypto::PublicKey;

use crate::backfill::positions::Tracker;
use crate::server::Distributor;
use crate::ws::socket::SessionWriter as Writer;

/// How a session learns what its collector's TCP acknowledged, and hands its point over.
pub(crate) struct Acks {
    /// The connection's descriptor (absent: the [`crate::backfill::positions::LAG_BYTES`]
    /// rule applies).
    pub(crate) fd: Option<std::os::fd::RawFd>,
    /// `RESUME_ACK_MARGIN_BYTES`.
    pub(crate) margin: u64,
}

impl Acks {
    /// Counts as delivered what the collector's TCP acknowledged, and remembers the point.
    pub(crate) fn hand_over(
        &self,
        d: &Distributor,
        key: PublicKey,
        tracker: &mut Tracker,
        out: &Writer,
    ) {
        let unacked = self
            .fd
            .and_then(|fd| firehose_tcpq::unacknowledged(fd).ok());
        tracker.settle(out.written(), unacked, self.margin);
        d.remember(key, tracker.delivered(), tracker.delivered_any());
    }
}
