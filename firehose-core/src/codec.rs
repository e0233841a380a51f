//! Wire encodings: JSON (the originals' form) and MessagePack (opt-in binary form).
//!
//! MessagePack uses rmp-serde's *named* form: structs are maps keyed by field name, never
//! positional arrays, so a client in another language can read them without our schema.
//!
//! ```
//! use firehose_core::codec::Encoding;
//! use firehose_core::records::{Cycle, Record};
//!
//! let record = Record::Cycle(Cycle {
//!     counter: 1,
//!     cycle_marker: "ab".into(),
//!     cycle_record: serde_json::json!({"counter": 1}),
//!     extra: Default::default(),
//! });
//! for enc in [Encoding::Json, Encoding::MessagePack] {
//!     let bytes = enc.encode(&record).unwrap();
//!     let back: Record = enc.decode(&bytes).unwrap();
//!     assert_eq!(back, record);
//! }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;

/// A wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// JSON text (websocket text frames). The default, and the originals' only form.
    #[default]
    Json,
    /// MessagePack with named fields (websocket binary frames).
    MessagePack,
}

impl Encoding {
    /// Encodes `value`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>> {
        match self {
            Encoding::Json => Ok(serde_json::to_vec(value)?),
            Encoding::MessagePack => Ok(rmp_serde::to_vec_named(value)?),
        }
    }

    /// Decodes a `T`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        match self {
            Encoding::Json => Ok(serde_json::from_slice(bytes)?),
            Encoding::MessagePack => Ok(rmp_serde::from_slice(bytes)?),
        }
    }

    /// Re-encodes a JSON document in this encoding (identity for [`Encoding::Json`]).
    pub fn from_json(self, json: &[u8]) -> Result<Vec<u8>> {
        match self {
            Encoding::Json => Ok(json.to_vec()),
            Encoding::MessagePack => {
                let value: serde_json::Value = serde_json::from_slice(json)?;
                Ok(rmp_serde::to_vec_named(&value)?)
            }
        }
    }

    /// The encoding named `name` (`json`, `msgpack`), as in requests and configuration.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Encoding::Json),
            "msgpack" => Some(Encoding::MessagePack),
            _ => None,
        }
    }

    /// The name used in configuration and requests (`json`, `msgpack`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::MessagePack => "msgpack",
        }
    }
}
