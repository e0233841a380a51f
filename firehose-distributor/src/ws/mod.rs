//! The websocket layer: a collector's connection from the upgrade to the live stream.
//!
//! | module | what it does |
//! |---|---|
//! | [`upgrade`] | the websocket handshake, taken from hyper so that sessions own the socket |
//! | [`session`] | a collector's session: the check at the upgrade, then the live loop |
//! | [`hub`] | sessions, one per collector key; fan-out with a slow-consumer policy |
//! | [`socket`] | a session's socket: tungstenite reads; shared frames written, many per call |
//! | [`frames`] | server frames as finished bytes, built once per message for every session |
//!
//! What a session sends before it goes live (a resume) is the [`crate::backfill`] layer's.

pub mod frames;
pub mod hub;
pub mod session;
pub mod socket;
pub mod upgrade;
