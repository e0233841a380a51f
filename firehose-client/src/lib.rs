//! # firehose-client
//!
//! What a collector embeds to consume a firehose-rs distributor (or the Shardeum original):
//! every message's distributor signature is checked, and records come out typed
//! ([`firehose_core::records`]). It depends on `firehose-core` and the websocket and HTTP
//! client libraries only; the RabbitMQ consumer is behind the `mq` feature.
//!
//! | module | what it holds |
//! |---|---|
//! | [`ws`] | [`Client`] and [`Subscription`]: the signed websocket subscription, a `Stream` of verified records |
//! | [`resuming`] | [`ResumingClient`]: reconnects with back-off and resumes with `since`, no gap, no duplicate |
//! | [`http`] | [`HttpClient`]: signed history requests, verified replies, busy retries |
//! | [`history`] | the history routes typed: totals, cycles, receipts and original transactions, accounts, transactions |
//! | `mq` | `MqConsumer` (feature `mq`): a queue of MQ mode, acked after the handler succeeds |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use firehose_client::{ClientConfig, ResumingClient};
//! use firehose_core::crypto::{KeyPair, PublicKey};
//!
//! let distributor = PublicKey::from_hex(
//!     "758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3",
//! )?;
//! let cfg = ClientConfig::new("ws://127.0.0.1:6100", KeyPair::generate(), distributor);
//! let mut client = ResumingClient::new(cfg);
//! let first = client.next().await?;
//! println!("{} {}", first.record.data_type(), first.record.id());
//! # Ok(()) }
//! ```

/// The records, keys and crypto the client hands out (`firehose-core`), so one dependency
/// is enough.
pub use firehose_core as core;
/// The websocket library whose errors [`ClientError::Ws`] carries (a refused upgrade is
/// `tungstenite::Error::Http` with the reply's status and body).
pub use tokio_tungstenite::tungstenite;

pub mod history;
pub mod http;
#[cfg(feature = "mq")]
pub mod mq;
pub mod resuming;
pub mod ws;

pub use history::{CycleTally, Keyed, Page, Totals};
pub use http::{HttpClient, HttpError};
pub use resuming::ResumingClient;
pub use ws::{Client, ClientConfig, ClientError, Subscription};
