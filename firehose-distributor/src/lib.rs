//! # firehose-distributor
//!
//! The Shardeum-compatible distributor: streams data-log entries to authenticated collectors
//! over websockets and serves history over HTTP. (In progress.)
