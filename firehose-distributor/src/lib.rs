//! # firehose-distributor
//!
//! The Shardeum-compatible distributor: tails the archiver's data logs and streams every new
//! cycle, original transaction and receipt to authenticated collectors over websockets, each
//! entry signed once and shared as the same bytes with every client.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | `distributor-config.json` with the original's keys, env and `--KEY value` overrides |
//! | [`reload`] | the subscriber list reloaded on a file change or `SIGUSR1`; expired ones swept |
//! | [`config_keys`] | unknown keys reported with the closest known one; misspelt security settings refused |
//! | [`server`] | the shared state ([`Distributor`]) and its lifecycle: bind, serve, shut down |
//! | [`listener`] | accepting connections: descriptor budget, pending cap, header timeout |
//! | [`router`] | the HTTP routes on the one port (CORS, body and time limits, rate limit) |
//! | [`readers`] | the live log readers: each entry counted, signed once, published |
//! | [`hub`] | sessions, one per collector key; fan-out with a slow-consumer policy |
//! | [`session`] | a collector's websocket: the check at the upgrade, back-fill, hand-over, live |
//! | [`upgrade`] | the websocket handshake, taken from hyper so that sessions own the socket |
//! | [`socket`] | a session's socket: tungstenite reads; shared frames written, many per call |
//! | [`frames`] | server frames as finished bytes, built once per message for every session |
//! | [`auth`] | the subscription check and replay cache (401 otherwise) |
//! | [`archive_db`] | the archiver database: a pool for history, a connection per back-fill |
//! | [`api`] | the history HTTP API, answering as the original (signed requests and replies) |
//! | [`refusals`] | refused HTTP requests counted by route and reason |
//! | [`signatures`] | signatures shared between back-fills that resume over the same rows |
//! | [`resume`] | `since`: back-fill from SQLite and the retained logs, then live, no gap, no duplicate |
//! | [`logindex`] | where a resume scans the retained logs from |
//! | [`metrics`] / [`prometheus`] | `/metrics`: Prometheus text, or the original's JSON |
//! | [`mq`] | MQ mode: publish to RabbitMQ with confirms and a durable cursor |
//!
//! The collector side (websocket, resuming, history API and MQ clients) is the
//! `firehose-client` crate.

pub mod api;
pub mod archive_db;
pub mod atomic_file;
pub mod auth;
pub mod backfill_slots;
pub mod body_budget;
pub mod check;
pub mod config;
pub mod config_keys;
mod config_overrides;
mod config_ranges;
pub mod config_source;
pub mod frames;
pub mod hub;
pub mod listener;
pub mod logindex;
pub mod metrics;
pub mod mq;
pub mod peers;
pub mod positions;
pub mod positions_file;
pub mod prometheus;
pub mod ratelimit;
pub mod readers;
pub mod refusals;
pub mod reload;
pub mod resume;
pub mod router;
pub mod server;
pub mod session;
mod session_backfill;
pub mod signatures;
pub mod socket;
pub mod upgrade;

pub use config::Config;
pub use server::Distributor;
