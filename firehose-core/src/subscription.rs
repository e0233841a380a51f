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

use crate::canonical::safe_stringify;
use crate::crypto::{Crypto, KeyPair, PublicKey};

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

/// `{collectorInfo: {subscriptionType, timestamp}, sender}` before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRequest {
    /// Requested subscription.
    pub subscription_type: SubscriptionType,
    /// The collector's public key (must equal the signer).
    pub sender: PublicKey,
    /// Unix time in milliseconds when the request was made.
    pub timestamp_ms: u64,
    /// Extra `collectorInfo` fields (e.g. a resume point), kept in the signed object.
    pub extra_info: serde_json::Map<String, Value>,
}

impl SubscriptionRequest {
    /// A request without extra fields.
    pub fn new(subscription_type: SubscriptionType, sender: PublicKey, timestamp_ms: u64) -> Self {
        Self {
            subscription_type,
            sender,
            timestamp_ms,
            extra_info: Default::default(),
        }
    }

    /// The unsigned JSON object.
    pub fn to_value(&self) -> Value {
        let mut info = self.extra_info.clone();
        info.insert(
            "subscriptionType".into(),
            Value::String(self.subscription_type.as_str().into()),
        );
        info.insert("timestamp".into(), Value::from(self.timestamp_ms));
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
