//! Tagged values of `safeStringify`: BigInt, Buffer and Uint8Array.
//!
//! JavaScript values that JSON cannot hold are written as small tag objects:
//!
//! | JavaScript | JSON written |
//! |---|---|
//! | `BigInt` | `{"dataType":"bi","value":"<hex>"}` |
//! | `Buffer` | `{"value":"<base64>","dataType":"bb"}` |
//! | `Uint8Array` | `{"value":"<base64>","dataType":"u8ab"}` |
//!
//! In a [`serde_json::Value`] they are kept as those objects; this module builds and reads them.
//!
//! ```
//! use firehose_core::{canonical::safe_stringify, tagged::{self, Tagged}};
//! use serde_json::json;
//!
//! let v = json!({"a": tagged::buffer(&[1, 2, 3]), "b": tagged::bigint_from_u128(2)});
//! assert_eq!(safe_stringify(&v), r#"{"a":{"value":"AQID","dataType":"bb"},"b":{"dataType":"bi","value":"2"}}"#);
//! assert_eq!(Tagged::from_value(&v["a"]), Some(Tagged::Buffer(vec![1, 2, 3])));
//! ```

use base64::Engine as _;
use serde_json::{json, Value};

/// `dataType` of a BigInt.
pub const TAG_BIGINT: &str = "bi";
/// `dataType` of a Node.js Buffer.
pub const TAG_BUFFER: &str = "bb";
/// `dataType` of a Uint8Array.
pub const TAG_U8ARRAY: &str = "u8ab";

/// A decoded tag object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// A BigInt, as the lowercase hex digits JavaScript's `toString(16)` prints (sign included).
    BigInt(String),
    /// A Node.js Buffer.
    Buffer(Vec<u8>),
    /// A Uint8Array.
    U8Array(Vec<u8>),
}

impl Tagged {
    /// Reads a tag object; `None` if `value` is not one (or its payload does not decode).
    pub fn from_value(value: &Value) -> Option<Tagged> {
        let map = value.as_object()?;
        let payload = map.get("value")?.as_str()?;
        match map.get("dataType")?.as_str()? {
            TAG_BIGINT => Some(Tagged::BigInt(payload.to_owned())),
            TAG_BUFFER => base64::engine::general_purpose::STANDARD
                .decode(payload)
                .ok()
                .map(Tagged::Buffer),
            TAG_U8ARRAY => base64::engine::general_purpose::STANDARD
                .decode(payload)
                .ok()
                .map(Tagged::U8Array),
            _ => None,
        }
    }

    /// The tag object for this value.
    pub fn to_value(&self) -> Value {
        match self {
            Tagged::BigInt(hex) => json!({"dataType": TAG_BIGINT, "value": hex}),
            Tagged::Buffer(bytes) => buffer(bytes),
            Tagged::U8Array(bytes) => u8array(bytes),
        }
    }
}

/// A Buffer tag holding `bytes`.
pub fn buffer(bytes: &[u8]) -> Value {
    json!({"dataType": TAG_BUFFER, "value": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// A Uint8Array tag holding `bytes`.
pub fn u8array(bytes: &[u8]) -> Value {
    json!({"dataType": TAG_U8ARRAY, "value": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// A BigInt tag for a non-negative integer.
pub fn bigint_from_u128(n: u128) -> Value {
    json!({"dataType": TAG_BIGINT, "value": format!("{n:x}")})
}
