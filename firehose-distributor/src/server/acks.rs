//! What a session hands over as its collector's position: the messages whose last byte the
//! collector's TCP acknowledged ([`crate::backfill::positions`]).

use firehose_core::crypto::PublicKey;
use firehose_core::records::DataType;
use firehose_core::since::Since;

use crate::backfill::positions::Tracker;
use crate::server::Distributor;
use crate::ws::replay::key_of;
use crate::ws::socket::SessionWriter as Writer;

/// How a session learns what its collector's TCP acknowledged, and hands its point over.
pub(crate) struct Acks {
    /// The connection's descriptor (absent: the [`crate::backfill::positions::LAG_BYTES`]
    /// rule applies).
    pub(crate) fd: Option<std::os::fd::RawFd>,
    /// `RESUME_ACK_MARGIN_BYTES`.
    pub(crate) margin: u64,
    /// Whether this session's point may replace the one remembered for its key: only when
    /// it carries that history on without a gap ([`continues`]).
    pub(crate) keeps_position: bool,
}

/// Whether a session starting at `start` carries on the history remembered as `remembered`
/// without a gap: for every type `remembered` names, `start` is at or before it. A live-only
/// session (or one with a later `since`) of a key with a remembered point does not: handing
/// its point over would skip what lies between (a `firehose tail` run with a collector's
/// key would make that collector lose it).
pub(crate) fn continues(start: &Since, remembered: &Since) -> bool {
    DataType::ALL
        .into_iter()
        .all(|t| match key_of(remembered, t) {
            None => true,
            Some(r) => key_of(start, t).is_some_and(|s| at(&r).has(&s)),
        })
}

/// The point just at `k`.
fn at(k: &firehose_core::since::RecordKey) -> Since {
    let mut s = Since::default();
    s.advance_key(k);
    s
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
        if self.keeps_position {
            d.remember(key, tracker.delivered(), tracker.delivered_any());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_core::since::PageKey;

    fn point(cycle: u64, receipt_ts: Option<u64>) -> Since {
        Since {
            cycle: Some(cycle),
            original_tx: None,
            receipt: receipt_ts.map(|timestamp| PageKey {
                cycle,
                timestamp,
                id: "r".into(),
            }),
        }
    }

    #[test]
    fn only_a_start_at_or_before_the_remembered_point_continues_it() {
        let remembered = point(10, Some(500));
        assert!(
            continues(&point(10, Some(500)), &remembered),
            "the point itself"
        );
        assert!(
            continues(&point(8, Some(100)), &remembered),
            "before it: duplicates only"
        );
        assert!(
            !continues(&point(12, Some(500)), &remembered),
            "cycles after it: a gap"
        );
        assert!(
            !continues(&point(10, Some(900)), &remembered),
            "receipts after it"
        );
        assert!(
            !continues(&point(10, None), &remembered),
            "no receipt point at all"
        );
        assert!(
            continues(&point(99, None), &Since::default()),
            "nothing remembered"
        );
    }
}
