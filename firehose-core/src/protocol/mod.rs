//! What both ends of the wire must agree on, written once: the close codes the distributor's
//! websocket sends and what a collector should do on each, the history routes ([`history`]),
//! and MQ mode's names ([`mq`]).
//!
//! ```
//! use firehose_core::protocol::{CLOSE_RESUME_LATER, CLOSE_SLOW_CONSUMER};
//! assert_eq!((CLOSE_SLOW_CONSUMER, CLOSE_RESUME_LATER), (4001, 1011));
//! ```

pub mod history;
pub mod mq;

/// The original distributor's published dev public key: its default `DISTRIBUTOR_PUBLIC_KEY`,
/// which a distributor started without keys signs with (and warns), as the original does, and
/// what tools trust when told nothing else.
pub const DEV_PUBLIC_KEY: &str = "758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3";
/// The original distributor's published dev secret key. Public knowledge: anyone can sign
/// with it, so it must never sign in production.
pub const DEV_SECRET_KEY: &str = "3be00019f23847529bd63e41124864983175063bb524bd54ea3c155f2fa12969758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3";

/// Replaced by a newer connection with the same collector key.
pub const CLOSE_REPLACED: u16 = 1000;
/// Subscription expired or removed, or the distributor is shutting down: reconnect later.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// A message from the collector was too big.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The history for a resume is not available now (database missing, back-fill lapped by the
/// log ring, no back-fill slot): resume again later from the same point.
pub const CLOSE_RESUME_LATER: u16 = 1011;
/// The collector read too slowly (its queue overflowed, or a back-fill did not progress):
/// resume from what it has.
pub const CLOSE_SLOW_CONSUMER: u16 = 4001;
