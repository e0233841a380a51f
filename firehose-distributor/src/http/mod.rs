//! The HTTP layer: the one port's listener and routes, and the history API behind them.
//!
//! | module | what it does |
//! |---|---|
//! | [`listener`] | accepting connections: descriptor budget, pending caps, header timeout |
//! | [`peers`] | connections not yet sessions, counted per address |
//! | [`router`] | the routes (CORS, body and time limits, rate limit) |
//! | [`api`] | the history API, answering as the original (signed requests and replies) |
//! | [`ratelimit`] | `RATE_LIMIT` requests per minute per address |
//! | [`body_budget`] | request bodies buffered at once, in all |
//! | [`refusals`] | refused requests counted by route and reason |

pub mod api;
pub mod body_budget;
pub mod listener;
pub mod peers;
pub mod ratelimit;
pub mod refusals;
pub mod router;
