//! # firehose-distributor
//!
//! The Shardeum-compatible distributor: tails the archiver's data logs and streams every new
//! cycle, original transaction and receipt to authenticated collectors over websockets, each
//! entry signed once and shared as the same bytes with every client.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | `distributor-config.json` with the original's keys, env overrides |
//! | [`auth`] | the subscription check at the websocket upgrade (401 otherwise) |
//! | [`hub`] | sessions, one per collector key; fan-out with a slow-consumer policy |
//! | [`archive_db`] | the archiver database, opened lazily and retried while missing |
//! | [`api`] | the history HTTP API (signed requests and replies, SQLite off the async threads) |
//! | [`resume`] | `since`: back-fill from SQLite and the retained logs, then live, no gap, no duplicate |
//! | [`logindex`] | where a resume scans the retained logs from |
//! | [`server`] | the listener (HTTP + websocket), readers, sessions |
//! | [`client`] | the collector side: signed connect, verified typed records |
//! | [`http_client`] | the collector side of the history API: signed requests, verified replies |
//! | [`archiver_sim`] | a simulated archiver (data logs + SQLite) for demos and tests |
//! | [`mq`] | MQ mode: publish to RabbitMQ with confirms and a durable cursor; the consumer |

pub mod api;
pub mod archive_db;
pub mod archiver_sim;
pub mod auth;
pub mod client;
pub mod config;
pub mod config_keys;
pub mod http_client;
pub mod hub;
pub mod listener;
pub mod logindex;
pub mod metrics;
pub mod mq;
pub mod prometheus;
pub mod ratelimit;
pub mod readers;
pub mod refusals;
pub mod resume;
pub mod router;
pub mod server;
pub mod session;

pub use config::Config;
pub use server::Distributor;
