//! Signed distributor messages: `{"cycle"|"originalTx"|"receipt": <entry>, "sign": {...}}`.
//!
//! The distributor wraps every data-log entry under its type's key and signs the wrapper with
//! its own key. [`encode_signed_entry`] does that straight from the entry's canonical bytes (a
//! data-log line), hashing and writing each byte once; [`SignedRecord`] is the typed view a
//! client decodes into.
//!
//! ```
//! use firehose_core::crypto::{Crypto, KeyPair};
//! use firehose_core::message::{encode_signed_entry, SignedRecord};
//! use firehose_core::records::DataType;
//!
//! let crypto = Crypto::default();
//! let keys = KeyPair::from_seed([9; 32]);
//! let line = br#"{"cycle":3,"originalTxData":{"tx":1},"timestamp":5,"txId":"aa"}"#;
//! let msg = encode_signed_entry(&crypto, &keys, DataType::OriginalTx, line);
//! let value: serde_json::Value = serde_json::from_slice(&msg).unwrap();
//! assert_eq!(crypto.verify_obj(&value).unwrap(), keys.public_key());
//! let typed = SignedRecord::verify_json(&crypto, &msg, &keys.public_key()).unwrap();
//! assert_eq!(typed.record.cycle(), 3);
//! ```

use serde::{Deserialize, Serialize};

use crate::crypto::{Crypto, KeyPair, PublicKey, Sign};
use crate::error::{Error, Result};
use crate::records::{DataType, Record};

/// A record with the distributor's signature, as sent on the websocket and to RabbitMQ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The record (serialised under its type key).
    #[serde(flatten)]
    pub record: Record,
    /// The signature over `{"<type>": entry}`.
    pub sign: Sign,
}

impl SignedRecord {
    /// Parses a JSON message, checks that it is signed by `expected` and returns it typed.
    pub fn verify_json(crypto: &Crypto, json: &[u8], expected: &PublicKey) -> Result<Self> {
        // As the collectors' `safeJsonParse` reads it (lone surrogates, reserved keys), with
        // the wrapper's level on top of an entry's.
        let value = crate::canonical::parse_within(json, crate::jscompat::MAX_NESTING + 1)?;
        let owner = crypto.verify_obj(&value)?;
        if &owner != expected {
            return Err(Error::BadSignature {
                owner: owner.to_hex(),
            });
        }
        Ok(serde_json::from_value(value)?)
    }
}

/// Builds the signed message for one entry from its canonical JSON bytes.
///
/// `entry` must be canonical (`safeStringify` output, as every data-log line is): the message
/// is then byte-identical to what the original distributor sends for the same entry.
pub fn encode_signed_entry(
    crypto: &Crypto,
    keys: &KeyPair,
    data_type: DataType,
    entry: &[u8],
) -> Vec<u8> {
    // Keys sort as <key> < "sign" for all three types, so the message stays canonical.
    sign_canonical_object(crypto, keys, entry_object(data_type, entry))
}

/// `{"<key>":<entry>}`: the object a message for `entry` signs (see [`encode_signed_entry`];
/// hash it with [`Crypto::hash`], sign with [`Crypto::sign_canonical`], finish with
/// [`append_sign`], when the signature may come from elsewhere, e.g. a cache).
pub fn entry_object(data_type: DataType, entry: &[u8]) -> Vec<u8> {
    let key = data_type.log_name();
    let mut out = Vec::with_capacity(entry.len() + key.len() + 240);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(entry);
    out.push(b'}');
    out
}

/// Signs a JSON object given in canonical form (`safeStringify` output) and returns it with
/// `"sign":{"owner","sig"}` appended as its last field: what `signObj` then `JSON.stringify`
/// would send, with `sign` last. The signature covers the object without `sign`, so a reader
/// that parses and re-canonicalises (every Shardus verifier) accepts it whatever the key order.
///
/// ```
/// use firehose_core::crypto::{Crypto, KeyPair};
/// use firehose_core::message::sign_canonical_object;
///
/// let (crypto, keys) = (Crypto::default(), KeyPair::from_seed([4; 32]));
/// let signed = sign_canonical_object(&crypto, &keys, br#"{"a":[1,2],"z":true}"#.to_vec());
/// let v: serde_json::Value = serde_json::from_slice(&signed).unwrap();
/// assert_eq!(crypto.verify_obj(&v).unwrap(), keys.public_key());
/// assert_eq!(sign_canonical_object(&crypto, &keys, b"{}".to_vec())[..9], br#"{"sign":{"#[..]);
/// ```
pub fn sign_canonical_object(crypto: &Crypto, keys: &KeyPair, object: Vec<u8>) -> Vec<u8> {
    debug_assert!(object.first() == Some(&b'{') && object.last() == Some(&b'}'));
    let sign = crypto.sign_canonical(&object, keys);
    append_sign(object, &sign)
}

/// Appends `"sign":{"owner","sig"}` as the last field of a JSON `object` (signed elsewhere).
pub fn append_sign(mut object: Vec<u8>, sign: &Sign) -> Vec<u8> {
    object.pop();
    if object.len() > 1 {
        object.push(b',');
    }
    object.extend_from_slice(b"\"sign\":{\"owner\":\"");
    object.extend_from_slice(sign.owner.as_bytes());
    object.extend_from_slice(b"\",\"sig\":\"");
    object.extend_from_slice(sign.sig.as_bytes());
    object.extend_from_slice(b"\"}}");
    object
}
