//! # firehose-distributor
//!
//! The Shardeum-compatible distributor: tails the archiver's data logs and streams every new
//! cycle, original transaction and receipt to authenticated collectors over websockets, each
//! entry signed once and shared as the same bytes with every client.
//!
//! The folders are the layers. Each imports only the layers below it; `server` composes them
//! and nothing imports `server` but the binary:
//!
//! | layer | what it does |
//! |---|---|
//! | [`server`] | the composition root: the shared state ([`Distributor`]) and its lifecycle (bind, serve, shut down), the live readers, a collector's session (upgrade check, back-fill, hand-over, live loop), the routes and the history API, `/metrics`, reload, MQ mode's service |
//! | [`http`] | the transport: listener (descriptor budget, pending caps, header timeout), per-address counts, rate limit, body budget, refusal counts |
//! | [`backfill`] | resumes: the archive database and retained logs, positions (implicit resume), back-fill slots, shared signatures |
//! | [`ws`] | the websocket mechanics: upgrade, hub (fan-out with a slow-consumer policy), socket, frames |
//! | [`mq`] | MQ mode: publish to RabbitMQ with confirms and a durable cursor |
//! | [`auth`] | who may subscribe or ask: signatures, the allow-list, the replay cache |
//! | [`config`] | `distributor-config.json` with the original's keys, env and `--KEY value` overrides; `check` |
//! | [`metrics`] | the Prometheus text format |
//!
//! Embedders need [`Config`], [`Distributor`] (`new`, `start_readers`, `serve`) and
//! [`server::mq::serve`]; the layers are public for tests, benchmarks and tools.
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
pub mod server;
pub mod ws;

pub use config::Config;
pub use server::Distributor;
