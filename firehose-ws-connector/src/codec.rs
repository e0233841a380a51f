//! Envelope codec (protobuf or Go-JSON `WsMessage`) and outport block decoding.

use bytes::Bytes;
use prost::Message as _;

use crate::proto::{Header, HeaderV2, MetaBlock, OutportBlock, WsMessage, TYPE_ACK};

/// Topic names of the outport protocol.
pub mod topics {
    /// A new block (the only one printed).
    pub const SAVE_BLOCK: &str = "SaveBlock";
    /// A block was reverted (a reorg signal; logged).
    pub const REVERT_INDEXED_BLOCK: &str = "RevertIndexedBlock";
    /// Rounds info.
    pub const SAVE_ROUNDS_INFO: &str = "SaveRoundsInfo";
    /// Validators' public keys.
    pub const SAVE_VALIDATORS_PUB_KEYS: &str = "SaveValidatorsPubKeys";
    /// Validators' rating.
    pub const SAVE_VALIDATORS_RATING: &str = "SaveValidatorsRating";
    /// Accounts.
    pub const SAVE_ACCOUNTS: &str = "SaveAccounts";
    /// A block became final (logged).
    pub const FINALIZED_BLOCK: &str = "FinalizedBlock";
    /// Node settings request / answer.
    pub const SETTINGS: &str = "Settings";
    /// All eight topics.
    pub const ALL: [&str; 8] = [
        SAVE_BLOCK,
        REVERT_INDEXED_BLOCK,
        SAVE_ROUNDS_INFO,
        SAVE_VALIDATORS_PUB_KEYS,
        SAVE_VALIDATORS_RATING,
        SAVE_ACCOUNTS,
        FINALIZED_BLOCK,
        SETTINGS,
    ];
}

/// Why a message or block could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope does not decode.
    #[error("envelope: {0}")]
    Envelope(String),
    /// The outport block does not decode.
    #[error("outport block: {0}")]
    Block(#[from] prost::DecodeError),
    /// The block has no `BlockData`.
    #[error("outport block without block data")]
    NoBlockData,
    /// A header type this connector does not know.
    #[error("unknown header type `{0}`")]
    UnknownHeaderType(String),
    /// The header bytes do not decode as their type.
    #[error("{kind} header: {source}")]
    Header {
        /// The header type.
        kind: &'static str,
        /// prost's complaint.
        source: prost::DecodeError,
    },
}

/// How envelopes are marshalled (`marshaller_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Marshaller {
    /// `gogo protobuf` (what nodes use for firehose).
    #[default]
    Protobuf,
    /// `json`: Go encoding/json envelope; the payload inside stays protobuf.
    Json,
}

impl Marshaller {
    /// Parses the original's config value (`gogo protobuf` or `json`).
    pub fn from_config(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gogo protobuf" | "protobuf" | "proto" => Some(Marshaller::Protobuf),
            "json" => Some(Marshaller::Json),
            _ => None,
        }
    }

    /// Decodes one envelope. With protobuf the payload is a slice of `bytes`, not a copy (a
    /// block of megabytes is never copied on its way to the output).
    pub fn decode(self, bytes: Bytes) -> Result<WsMessage, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Envelope("empty message".into()));
        }
        match self {
            Marshaller::Protobuf => {
                WsMessage::decode(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))
            }
            Marshaller::Json => {
                serde_json::from_slice(&bytes).map_err(|e| DecodeError::Envelope(e.to_string()))
            }
        }
    }

    /// Encodes one envelope.
    pub fn encode(self, msg: &WsMessage) -> Vec<u8> {
        match self {
            Marshaller::Protobuf => msg.encode_to_vec(),
            Marshaller::Json => serde_json::to_vec(msg).expect("WsMessage serialises"),
        }
    }

    /// The ack for `counter`: `WsMessage{Counter, Type: Ack}`.
    pub fn ack(self, counter: u64) -> Vec<u8> {
        self.encode(&WsMessage {
            counter,
            r#type: TYPE_ACK,
            ..Default::default()
        })
    }
}

/// What the output needs from a block; the payload itself stays as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block nonce (height).
    pub nonce: u64,
    /// Header hash.
    pub hash: Bytes,
    /// Previous block's hash.
    pub prev_hash: Bytes,
    /// Highest final block nonce (the last irreversible block).
    pub lib: u64,
    /// Unix time in seconds, as in the header.
    pub timestamp: u64,
    /// Shard (0xFFFFFFFF for the metachain).
    pub shard: u32,
}

/// The metachain's shard id.
pub const METACHAIN_SHARD: u32 = u32::MAX;

/// Decodes the header fields of a `SaveBlock` payload (an `OutportBlock`).
pub fn decode_block(payload: &[u8]) -> Result<BlockInfo, DecodeError> {
    let block = OutportBlock::decode(payload)?;
    let data = block.block_data.ok_or(DecodeError::NoBlockData)?;
    let (nonce, prev_hash, timestamp, shard) = match data.header_type.as_str() {
        "Header" => {
            let h = Header::decode(data.header_bytes.clone()).map_err(|source| {
                DecodeError::Header {
                    kind: "Header",
                    source,
                }
            })?;
            (h.nonce, h.prev_hash, h.time_stamp, h.shard_id)
        }
        "HeaderV2" => {
            let h = HeaderV2::decode(data.header_bytes.clone())
                .map_err(|source| DecodeError::Header {
                    kind: "HeaderV2",
                    source,
                })?
                .header
                .unwrap_or_default();
            (h.nonce, h.prev_hash, h.time_stamp, h.shard_id)
        }
        "MetaBlock" => {
            let h = MetaBlock::decode(data.header_bytes.clone()).map_err(|source| {
                DecodeError::Header {
                    kind: "MetaBlock",
                    source,
                }
            })?;
            (h.nonce, h.prev_hash, h.time_stamp, METACHAIN_SHARD)
        }
        other => return Err(DecodeError::UnknownHeaderType(other.to_owned())),
    };
    let shard = if data.header_type == "MetaBlock" {
        shard
    } else {
        block.shard_id.max(shard)
    };
    Ok(BlockInfo {
        nonce,
        hash: data.header_hash,
        prev_hash,
        lib: block.highest_final_block_nonce,
        timestamp,
        shard,
    })
}
