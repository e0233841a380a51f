//! # firehose-rs
//!
//! Moves blockchain "firehose" data from the nodes that produce it to the services that
//! consume it, in real time, with nothing lost. This umbrella crate re-exports the member
//! crates of the workspace behind cargo features (all on by default):
//!
//! | feature | crate | what it does |
//! |---|---|---|
//! | `core` | [`core`] | records, Shardus crypto, canonical JSON, codecs |
//! | `client` | [`client`] | what a collector embeds: verified streams, resumption, history API, MQ |
//! | `logreader` | [`logreader`] | tails the archiver's rotating data-log files |
//! | `dbstore` | [`dbstore`] | reads the archiver's SQLite databases |
//! | `distributor` | [`distributor`] | the Shardeum-compatible distributor |
//! | `sim` | [`sim`] | simulators and fixtures for the examples (also turns on `dbstore`'s and `ws-connector`'s `sim`) |
//! | `ws-connector` | [`ws_connector`] | MultiversX outport websocket → `FIRE` lines |
//!
//! ```
//! use firehose::core::crypto::{Crypto, KeyPair};
//! use serde_json::json;
//!
//! let crypto = Crypto::default();
//! let keys = KeyPair::from_seed([7u8; 32]);
//! let mut msg = json!({"hello": "world"});
//! crypto.sign_obj(&mut msg, &keys).unwrap();
//! assert!(crypto.verify_obj(&msg).is_ok());
//! ```

#[cfg(feature = "client")]
pub use firehose_client as client;
#[cfg(feature = "core")]
pub use firehose_core as core;
#[cfg(feature = "dbstore")]
pub use firehose_dbstore as dbstore;
#[cfg(feature = "distributor")]
pub use firehose_distributor as distributor;
#[cfg(feature = "logreader")]
pub use firehose_logreader as logreader;
#[cfg(feature = "sim")]
pub use firehose_sim as sim;
#[cfg(feature = "ws-connector")]
pub use firehose_ws_connector as ws_connector;
