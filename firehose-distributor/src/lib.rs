//! # firehose-distributor
//!
//! The Shardeum-compatible distributor: tails the archiver's data logs and streams every new
//! cycle, original transaction and receipt to authenticated collectors over websockets, each
//! entry signed once and shared as the same bytes with every client.
//!
//! The folders are the layers; each exposes a small API to the others.
//!
//! | module | what it does |
//! |---|---|
//! | [`config`] | `distributor-config.json` with the original's keys, env and `--KEY value` overrides; reload; `check` |
//! | [`server`] | the shared state ([`Distributor`]) and its lifecycle: bind, serve, shut down |
//! | [`readers`] | the live log readers: each entry counted, signed once, published to the hub |
//! | [`ws`] | a collector's websocket: upgrade, session, hub (fan-out), socket, frames |
//! | [`backfill`] | resumes: the archive database and retained logs, then live, no gap and no duplicate |
//! | [`http`] | the listener, the routes and the history API |
//! | [`auth`] | who may subscribe or ask: signatures, the allow-list, the replay cache |
//! | [`metrics`] | `/metrics`: Prometheus text, or the original's JSON |
//! | [`mq`] | MQ mode: publish to RabbitMQ with confirms and a durable cursor |
//!
//! Embedders need [`Config`], [`Distributor`] (`new`, `start_readers`, `serve`) and
//! [`mq::service::serve`]; the layers are public for tests, benchmarks and tools.
//!
//! The collector side (websocket, resuming, history API and MQ clients) is the
//! `firehose-client` crate.

pub mod atomic_file;
pub mod auth;
pub mod backfill;
pub mod config;
pub mod http;
pub mod metrics;
pub mod mq;
pub mod readers;
pub mod server;
pub mod ws;

pub use config::Config;
pub use server::Distributor;
