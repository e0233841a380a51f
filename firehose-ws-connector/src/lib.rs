//! # firehose-ws-connector
//!
//! A drop-in replacement for MultiversX's `mx-chain-ws-connector-firehose-go`: observer nodes
//! export blocks over the websocket "outport" protocol; this connector receives them (as
//! server or client), prints them on stdout in the Firehose console-reader protocol, and acks
//! each block only once its line is written and flushed.
//!
//! | module | what it does |
//! |---|---|
//! | [`proto`] | `WsMessage`, `OutportBlock` and header messages (prost) |
//! | [`codec`] | envelope codec (protobuf / JSON), topics, block header decoding |
//! | [`output`] | output formats ([`output::OutputFormat`]) and the one stdout writer |
//! | [`config`] | the original's `[web_socket]` settings |
//! | [`connector`] | server and client transport |
//! | [`handling`] | per-connection and per-message handling: decode, write, ack |
//! | [`metrics`] | blocks, bytes, ack latency, peers, newest block, refusals (Prometheus) |
//! | [`metrics_http`] | `--metrics-addr`: serves the metrics for scraping |
//!
//! ```
//! use firehose_ws_connector::codec::decode_block;
//! use firehose_ws_connector::output::{FirehoseFormat, OutputFormat};
//! use base64::Engine as _;
//!
//! // The original's unit-test vector.
//! let payload = base64::engine::general_purpose::STANDARD
//!     .decode("Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo").unwrap();
//! let info = decode_block(&payload).unwrap();
//! let mut line = Vec::new();
//! FirehoseFormat::default().block(&info, &payload, &mut line);
//! assert_eq!(
//!     String::from_utf8(line).unwrap(),
//!     "FIRE BLOCK 1 68617368 0 707265762068617368 0 100 Eh8SDwgBEglwcmV2IGhhc2g4ZBoGSGVhZGVyIgRoYXNo\n"
//! );
//! ```

pub mod budget;
pub mod codec;
pub mod config;
pub mod connector;
pub mod departure;
pub mod handling;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
pub mod output;
pub mod proto;

pub use codec::{topics, Marshaller};
pub use config::{Config, Mode};
pub use connector::{Connector, Stats};
