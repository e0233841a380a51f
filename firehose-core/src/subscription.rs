//! The collector's subscription request, sent in the `?data=` query of the websocket upgrade.
//!
//! ```
//! use firehose_core::crypto::{Crypto, KeyPair};
//! use firehose_core::subscription::{SubscriptionRequest, SubscriptionType};
//!
//! let crypto = Crypto::default();
//! let keys = KeyPair::from_seed([1; 32]);
//! let req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), 1_700_000_000_000);
//! let signed = req.sign(&crypto, &keys);
//! assert!(crypto.verify_obj(&signed).is_ok());
//! let query = firehose_core::subscription::encode_query_value(&signed);
//! assert!(query.starts_with("%7B%22collectorInfo%22"));
//! ```

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{safe_parse, safe_stringify};
use crate::codec::Encoding;
use crate::crypto::{Crypto, KeyPair, PublicKey};
use crate::since::Since;

/// What a subscriber may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubscriptionType {
    /// The full stream of cycles, original transactions and receipts.
    #[serde(rename = "FIREHOSE")]
    Firehose,
    /// Account data.
    #[serde(rename = "ACCOUNTS")]
    Accounts,
}

impl SubscriptionType {
    /// The name the originals use.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionType::Firehose => "FIREHOSE",
            SubscriptionType::Accounts => "ACCOUNTS",
        }
    }
}

/// `{collectorInfo: {subscriptionType, timestamp, since?, encoding?}, sender}` before signing.
///
/// The collector builds and signs it ([`SubscriptionRequest::sign`]); the distributor reads
/// the signed object back with [`SignedSubscription::parse`], which uses the same field names.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRequest {
    /// Requested subscription.
    pub subscription_type: SubscriptionType,
    /// The collector's public key (must equal the signer).
    pub sender: PublicKey,
    /// Unix time in milliseconds when the request was made.
    pub timestamp_ms: u64,
    /// Resume point (beyond the original): the distributor back-fills everything after it.
    pub since: Option<Since>,
    /// Wire encoding of the messages (beyond the original; JSON text frames by default).
    pub encoding: Encoding,
    /// Other `collectorInfo` fields, kept in the signed object.
    pub extra_info: serde_json::Map<String, Value>,
    /// Whether the distributor may resume this collector from the point it remembers for
    /// its key when `since` is absent (beyond the original; default true). `false` is sent
    /// as `"implicitResume": false`: live from now on (the original ignores the field).
    pub implicit_resume: bool,
}

/// `collectorInfo` field names.
mod field {
    pub const SUBSCRIPTION_TYPE: &str = "subscriptionType";
    pub const TIMESTAMP: &str = "timestamp";
    pub const SINCE: &str = "since";
    pub const ENCODING: &str = "encoding";
    pub const IMPLICIT_RESUME: &str = "implicitResume";
}

impl SubscriptionRequest {
    /// A live-only JSON request without extra fields.
    pub fn new(subscription_type: SubscriptionType, sender: PublicKey, timestamp_ms: u64) -> Self {
        Self {
            subscription_type,
            sender,
            timestamp_ms,
            since: None,
            encoding: Encoding::Json,
            extra_info: Default::default(),
            implicit_resume: true,
        }
    }

    /// The unsigned JSON object (`since` and `encoding` only when set / not JSON, so a plain
    /// request is byte-for-byte the original collector's).
    pub fn to_value(&self) -> Value {
        let mut info = self.extra_info.clone();
        info.insert(
            field::SUBSCRIPTION_TYPE.into(),
            Value::String(self.subscription_type.as_str().into()),
        );
        info.insert(field::TIMESTAMP.into(), Value::from(self.timestamp_ms));
        if let Some(since) = &self.since {
            info.insert(
                field::SINCE.into(),
                serde_json::to_value(since).expect("a resume point serialises"),
            );
        }
        if self.encoding != Encoding::Json {
            info.insert(field::ENCODING.into(), self.encoding.name().into());
        }
        if !self.implicit_resume {
            info.insert(field::IMPLICIT_RESUME.into(), Value::Bool(false));
        }
        serde_json::json!({"collectorInfo": info, "sender": self.sender.to_hex()})
    }

    /// The signed JSON object.
    pub fn sign(&self, crypto: &Crypto, keys: &KeyPair) -> Value {
        let mut v = self.to_value();
        crypto
            .sign_obj(&mut v, keys)
            .expect("a subscription request is an object");
        v
    }

    /// `encodeURIComponent(safeStringify(signed))`: the `data` query value of the upgrade.
    pub fn signed_query(&self, crypto: &Crypto, keys: &KeyPair) -> String {
        encode_query_value(&self.sign(crypto, keys))
    }
}

/// Why a subscription request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, or not the request's shape.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// `sign.owner` is not the sender.
    #[error("sign.owner is not the sender")]
    OwnerMismatch,
    /// `collectorInfo.since` is not a resume point.
    #[error("collectorInfo.since: {0}")]
    Since(String),
    /// `collectorInfo.encoding` names no known encoding.
    #[error("collectorInfo.encoding `{0}`: expected json or msgpack")]
    Encoding(String),
}

/// A signed subscription request as received, its shape checked
/// (`collectorInfo` object, `sender` string, `sign: {owner, sig}` strings, owner = sender).
/// Its fields are read on demand, so a policy can check them in its own order.
///
/// ```
/// use firehose_core::codec::Encoding;
/// use firehose_core::crypto::{Crypto, KeyPair};
/// use firehose_core::since::Since;
/// use firehose_core::subscription::{SignedSubscription, SubscriptionRequest, SubscriptionType};
///
/// let (crypto, keys) = (Crypto::default(), KeyPair::from_seed([2; 32]));
/// let mut req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), 1_700_000_000_000);
/// req.since = Some(Since { cycle: Some(41), ..Since::default() });
/// req.encoding = Encoding::MessagePack;
/// let text = firehose_core::canonical::safe_stringify(&req.sign(&crypto, &keys));
///
/// let got = SignedSubscription::parse(&text).unwrap();
/// assert_eq!(got.timestamp_ms(), Some(1_700_000_000_000));
/// assert_eq!(got.since().unwrap(), req.since);
/// assert_eq!(got.encoding().unwrap(), Encoding::MessagePack);
/// assert_eq!(got.verify(&crypto).unwrap(), keys.public_key());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SignedSubscription {
    value: Value,
}

impl SignedSubscription {
    /// Parses the `data` query value (already percent-decoded) and checks its shape.
    pub fn parse(data: &str) -> Result<Self, RequestError> {
        let value = safe_parse(data).map_err(|e| RequestError::Malformed(e.to_string()))?;
        Self::from_value(value)
    }

    /// Checks the shape of an already parsed request.
    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let malformed = |m: &str| RequestError::Malformed(m.to_owned());
        if !value.get("collectorInfo").is_some_and(Value::is_object) {
            return Err(malformed("collectorInfo is not an object"));
        }
        let sender = value
            .get("sender")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("sender is not a string"))?;
        let sign = value
            .get("sign")
            .filter(|s| s.is_object())
            .ok_or_else(|| malformed("sign is not an object"))?;
        let (Some(owner), Some(_)) = (
            sign.get("owner").and_then(Value::as_str),
            sign.get("sig").and_then(Value::as_str),
        ) else {
            return Err(malformed("sign.owner / sign.sig are not strings"));
        };
        if owner != sender {
            return Err(RequestError::OwnerMismatch);
        }
        Ok(Self { value })
    }

    fn info(&self) -> &Value {
        &self.value["collectorInfo"]
    }

    /// `sender` as sent (hex, any case).
    pub fn sender(&self) -> &str {
        self.value["sender"].as_str().unwrap_or_default()
    }

    /// `sign.sig` as sent.
    pub fn signature(&self) -> &str {
        self.value["sign"]["sig"].as_str().unwrap_or_default()
    }

    /// `collectorInfo.subscriptionType` (empty if missing or not a string: any type name
    /// loads, so this is not an enum).
    pub fn subscription_type(&self) -> &str {
        self.info()
            .get(field::SUBSCRIPTION_TYPE)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `collectorInfo.timestamp` if it is an unsigned integer.
    pub fn timestamp_ms(&self) -> Option<u64> {
        self.info().get(field::TIMESTAMP).and_then(Value::as_u64)
    }

    /// `collectorInfo.since` (absent or `null`: none).
    pub fn since(&self) -> Result<Option<Since>, RequestError> {
        match self.info().get(field::SINCE) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Since::deserialize(v)
                .map(Some)
                .map_err(|e| RequestError::Since(e.to_string())),
        }
    }

    /// `collectorInfo.encoding` (absent: JSON).
    pub fn encoding(&self) -> Result<Encoding, RequestError> {
        match self.info().get(field::ENCODING).and_then(Value::as_str) {
            None => Ok(Encoding::Json),
            Some(name) => {
                Encoding::from_name(name).ok_or_else(|| RequestError::Encoding(name.to_owned()))
            }
        }
    }

    /// Whether the collector lets the distributor resume it from a remembered point when it
    /// sends no `since`: anything but `"implicitResume": false` says yes.
    pub fn implicit_resume(&self) -> bool {
        self.info().get(field::IMPLICIT_RESUME) != Some(&Value::Bool(false))
    }

    /// The whole `collectorInfo` object.
    pub fn collector_info(&self) -> &Value {
        self.info()
    }

    /// Verifies the signature; returns the signer.
    pub fn verify(&self, crypto: &Crypto) -> crate::Result<PublicKey> {
        crypto.verify_obj(&self.value)
    }
}

/// JavaScript's `encodeURIComponent` set: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `encodeURIComponent(safeStringify(value))`: the `data` query value of the upgrade URL.
pub fn encode_query_value(value: &Value) -> String {
    utf8_percent_encode(&safe_stringify(value), URI_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(extra: &[(&str, Value)]) -> String {
        let (crypto, keys) = (Crypto::default(), KeyPair::from_seed([3; 32]));
        let mut req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), 7);
        for (k, v) in extra {
            req.extra_info.insert((*k).into(), v.clone());
        }
        safe_stringify(&req.sign(&crypto, &keys))
    }

    #[test]
    fn a_plain_request_has_only_the_original_fields() {
        let v = safe_parse(&signed(&[])).unwrap();
        let keys: Vec<&String> = v["collectorInfo"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["subscriptionType", "timestamp"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let got = SignedSubscription::parse(&signed(&[("since", serde_json::json!({"cycel": 1}))]));
        assert!(matches!(got.unwrap().since(), Err(RequestError::Since(m)) if m.contains("cycel")));
        let got = SignedSubscription::parse(&signed(&[("encoding", "cbor".into())])).unwrap();
        assert_eq!(got.encoding(), Err(RequestError::Encoding("cbor".into())));
        let got = SignedSubscription::parse(&signed(&[("since", Value::Null)])).unwrap();
        assert_eq!(got.since(), Ok(None));
        // Canonical JSON writes numbers as JavaScript does: past 2^53 they are not integers.
        let max = serde_json::json!({"cycle": u64::MAX});
        let got = SignedSubscription::parse(&signed(&[("since", max)])).unwrap();
        assert!(matches!(got.since(), Err(RequestError::Since(_))));
    }

    #[test]
    fn shape_errors_come_before_anything_else() {
        let mut v = safe_parse(&signed(&[])).unwrap();
        v["sign"]["owner"] = "00".into();
        assert_eq!(
            SignedSubscription::from_value(v.clone()),
            Err(RequestError::OwnerMismatch)
        );
        v["sign"] = Value::Null;
        assert!(matches!(
            SignedSubscription::from_value(v),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            SignedSubscription::parse("{\"collectorInfo\":1}"),
            Err(RequestError::Malformed(_))
        ));
        assert!(SignedSubscription::parse("not json").is_err());
    }
}
