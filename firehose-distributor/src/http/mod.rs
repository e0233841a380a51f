//! The HTTP layer: the one port's transport, beneath the routes. The routes and the history
//! API, which need the whole distributor, are the server's ([`crate::server::router`],
//! [`crate::server::api`]).
//!
//! | module | what it does |
//! |---|---|
//! | [`listener`] | accepting connections: descriptor budget, pending caps, header timeout |
//! | [`peers`] | connections not yet sessions, counted per address |
//! | [`ratelimit`] | `RATE_LIMIT` requests per minute per address |
//! | [`body_budget`] | request bodies buffered at once, in all |
//! | [`refusals`] | refused requests counted by route and reason |

pub mod body_budget;
pub mod listener;
pub mod peers;
pub mod ratelimit;
pub mod refusals;
