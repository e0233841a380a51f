//! The websocket layer: a collector's connection from the upgrade to the live stream.
//!
//! | module | what it does |
//! |---|---|
//! | [`upgrade`] | the websocket handshake, taken from hyper so that sessions own the socket |
//! | [`hub`] | sessions, one per collector key; fan-out with a slow-consumer policy |
//! | [`message`] | a published message: its frames, encoded once per wire format and shared |
//! | [`replay`] | the newest published messages, for resuming sessions to catch up from |
//! | [`socket`] | a session's socket: tungstenite reads; shared frames written, many per call |
//! | [`frames`] | server frames as finished bytes, built once per message for every session |
//!
//! A collector's session, which uses all of these with the back-fill layer, is the server's
//! ([`crate::server::session`]).

pub mod frames;
pub mod hub;
pub mod message;
pub mod replay;
pub mod socket;
pub mod upgrade;
