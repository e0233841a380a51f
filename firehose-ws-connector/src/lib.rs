//! # firehose-ws-connector
//!
//! Receives MultiversX outport blocks over websockets and prints `FIRE` lines for a Firehose
//! reader. (In progress.)
