//! # firehose-core
//!
//! The foundation of firehose-rs: record types, Shardus-compatible crypto, canonical JSON and
//! wire codecs. It knows nothing of files, sockets or databases.
//!
//! | module | what it holds |
//! |---|---|
//! | [`canonical`] | `fast-stable-stringify` and `safeStringify`, byte-exact, and parsing |
//! | [`tagged`] | BigInt / Buffer / Uint8Array tag objects of `safeStringify` |
//! | [`crypto`] | keyed BLAKE2b, attached Ed25519 signatures, `signObj` / `verifyObj` |
//! | [`records`] | `Cycle`, `OriginalTxData`, `Receipt`, `DataType`, `Record` |
//! | [`keyed`] | receipts and original transactions as one kind of keyed, paged row |
//! | [`message`] | the distributor's signed messages, built once from canonical bytes |
//! | [`subscription`] | the collector's signed subscription request, built and parsed by one type |
//! | [`record_key`] | a record's identity and order, read from a line without building the record |
//! | [`since`] | resume points and page keys (`since`), and the clock they use |
//! | [`codec`] | JSON and MessagePack (named) encodings |
//! | [`bounded`] | a map that keeps a bounded number of entries, oldest forgotten first |
//!
//! Every byte these modules produce is checked against vectors made by the JavaScript
//! libraries the originals use (`tests/data/shardus-crypto.json`).

pub mod bounded;
pub mod canonical;
pub mod canonicalize;
pub mod codec;
pub mod crypto;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod jscompat;
pub mod keyed;
pub mod message;
pub mod protocol;
pub mod record_key;
pub mod records;
pub mod since;
pub mod subscription;
pub mod tagged;

pub use error::{Error, Result};
