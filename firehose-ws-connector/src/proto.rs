//! The protobuf messages of the outport protocol, declared with prost's derive.
//!
//! Only the fields the connector reads are declared; prost skips the others, and the block
//! payload is forwarded as received, never re-encoded.

use bytes::Bytes;

/// `WsMessage` type: an acknowledgement.
pub const TYPE_ACK: i32 = 1;
/// `WsMessage` type: a payload.
pub const TYPE_PAYLOAD: i32 = 2;

/// The envelope of every websocket message (proto3).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsMessage {
    /// The sender waits for an ack with the same counter.
    #[prost(bool, tag = "1")]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_acknowledge: bool,
    /// Per-connection counter, from 1.
    #[prost(uint64, tag = "2")]
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub counter: u64,
    /// [`TYPE_ACK`] or [`TYPE_PAYLOAD`].
    #[prost(int32, tag = "3")]
    #[serde(default, rename = "type", skip_serializing_if = "is_zero_i32")]
    pub r#type: i32,
    /// The marshalled topic payload.
    #[prost(bytes = "bytes", tag = "4")]
    #[serde(
        default,
        with = "base64_bytes",
        skip_serializing_if = "Bytes::is_empty"
    )]
    pub payload: Bytes,
    /// The topic (see [`crate::topics`]).
    #[prost(string, tag = "5")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    /// Protocol version stamped by the sender.
    #[prost(uint32, tag = "6")]
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// Go's encoding/json writes `[]byte` as standard base64.
mod base64_bytes {
    use base64::Engine as _;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

/// The parts of `OutportBlock` the connector reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutportBlock {
    /// Shard of the block.
    #[prost(uint32, tag = "1")]
    pub shard_id: u32,
    /// Header and body.
    #[prost(message, optional, tag = "2")]
    pub block_data: Option<BlockData>,
    /// Nonce of the highest final block.
    #[prost(uint64, tag = "9")]
    pub highest_final_block_nonce: u64,
}

/// The parts of `BlockData` the connector reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockData {
    /// Shard of the block.
    #[prost(uint32, tag = "1")]
    pub shard_id: u32,
    /// The marshalled header; its type is `header_type`.
    #[prost(bytes = "bytes", tag = "2")]
    pub header_bytes: Bytes,
    /// `Header`, `HeaderV2` or `MetaBlock`.
    #[prost(string, tag = "3")]
    pub header_type: String,
    /// Hash of the header.
    #[prost(bytes = "bytes", tag = "4")]
    pub header_hash: Bytes,
}

/// The parts of a shard block `Header` the connector reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// Block nonce (height).
    #[prost(uint64, tag = "1")]
    pub nonce: u64,
    /// Hash of the previous block.
    #[prost(bytes = "bytes", tag = "2")]
    pub prev_hash: Bytes,
    /// Shard.
    #[prost(uint32, tag = "6")]
    pub shard_id: u32,
    /// Unix time in seconds.
    #[prost(uint64, tag = "7")]
    pub time_stamp: u64,
    /// Round.
    #[prost(uint64, tag = "8")]
    pub round: u64,
    /// Epoch.
    #[prost(uint32, tag = "9")]
    pub epoch: u32,
}

/// `HeaderV2`: wraps a [`Header`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderV2 {
    /// The embedded V1 header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
}

/// The parts of a metachain `MetaBlock` the connector reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaBlock {
    /// Block nonce.
    #[prost(uint64, tag = "1")]
    pub nonce: u64,
    /// Epoch.
    #[prost(uint32, tag = "2")]
    pub epoch: u32,
    /// Round.
    #[prost(uint64, tag = "3")]
    pub round: u64,
    /// Unix time in seconds.
    #[prost(uint64, tag = "4")]
    pub time_stamp: u64,
    /// Hash of the previous block.
    #[prost(bytes = "bytes", tag = "10")]
    pub prev_hash: Bytes,
}

/// `OutportConfig`, the answer to a `Settings` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutportConfig {
    /// Shard of the node.
    #[prost(uint32, tag = "1")]
    pub shard_id: u32,
    /// The node replays a database.
    #[prost(bool, tag = "2")]
    pub is_in_import_db_mode: bool,
}

/// `FinalizedBlock` payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FinalizedBlock {
    /// Shard.
    #[prost(uint32, tag = "1")]
    pub shard_id: u32,
    /// Hash of the finalized header.
    #[prost(bytes = "bytes", tag = "2")]
    pub header_hash: Bytes,
}
