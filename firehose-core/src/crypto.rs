//! Shardus crypto: keyed BLAKE2b hashes and attached Ed25519 signatures over canonical JSON.
//!
//! Compatible with `@shardus/crypto-utils`:
//!
//! * `hash(bytes)` is BLAKE2b with a 32-byte digest, **keyed** with a 32-byte hash key
//!   (libsodium `crypto_generichash`), see [`Crypto::hash`].
//! * `hashObj(obj)` hashes the canonical JSON of `obj` and returns lowercase hex,
//!   see [`Crypto::hash_obj`].
//! * `signObj(obj)` sets `obj.sign = {owner, sig}` where `sig` is libsodium's *attached*
//!   signature of the hash: hex of the 64-byte Ed25519 signature followed by the 32 hash bytes
//!   (192 hex characters), see [`Crypto::sign_obj`] and [`Crypto::verify_obj`].
//!
//! ```
//! use firehose_core::crypto::{Crypto, KeyPair};
//! use serde_json::json;
//!
//! let crypto = Crypto::default();
//! let keys = KeyPair::from_seed([1u8; 32]);
//! let mut obj = json!({"b": 1, "a": "x"});
//! crypto.sign_obj(&mut obj, &keys).unwrap();
//! assert_eq!(crypto.verify_obj(&obj).unwrap(), keys.public_key());
//! obj["b"] = json!(2);
//! assert!(crypto.verify_obj(&obj).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::{write_object, Flavour};
use crate::error::{decode_hex, Error, Result};

/// The default Shardus hash key (dev networks and the originals' defaults).
pub const DEFAULT_HASH_KEY_HEX: &str =
    "69fa4195670576c0160d660c3be36556ff8d504725be8a59b5a96509e0c994bc";

/// Length of an attached signature in bytes: 64-byte signature + 32-byte hash.
pub const ATTACHED_SIG_LEN: usize = 96;

/// The 32-byte key of the keyed BLAKE2b hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashKey([u8; 32]);

impl HashKey {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        Ok(Self(decode_hex::<32>("hash key", s)?))
    }
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Default for HashKey {
    fn default() -> Self {
        Self::from_hex(DEFAULT_HASH_KEY_HEX).expect("default hash key is valid hex")
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashKey({})", hex::encode(self.0))
    }
}

/// An Ed25519 public key (32 bytes), written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        Ok(Self(decode_hex::<32>("public key", s)?))
    }
    /// Lowercase hex, as the originals write keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_hex(s)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// An Ed25519 key pair. Secret keys are libsodium's 64 bytes: seed followed by public key.
pub struct KeyPair {
    seed: [u8; 32],
    public: PublicKey,
    inner: Ed25519KeyPair,
}

impl KeyPair {
    /// Derives the key pair of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let inner = Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are a seed");
        let mut pk = [0u8; 32];
        pk.copy_from_slice(inner.public_key().as_ref());
        Self {
            seed,
            public: PublicKey(pk),
            inner,
        }
    }

    /// Parses a libsodium secret key (128 hex characters: seed ‖ public key), checking that
    /// the public half belongs to the seed.
    pub fn from_secret_hex(s: &str) -> Result<Self> {
        let sk = decode_hex::<64>("secret key", s)?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&sk[..32]);
        let kp = Self::from_seed(seed);
        if kp.public.0[..] != sk[32..] {
            return Err(Error::KeyMismatch);
        }
        Ok(kp)
    }

    /// A fresh random key pair (from the operating system's generator).
    pub fn generate() -> Self {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .expect("the OS random generator is available");
        Self::from_seed(seed)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The libsodium secret key as hex (seed ‖ public key).
    pub fn secret_key_hex(&self) -> String {
        let mut s = hex::encode(self.seed);
        s.push_str(&self.public.to_hex());
        s
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The `sign` field of a signed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sign {
    /// Hex public key of the signer.
    pub owner: String,
    /// Hex attached signature (signature ‖ hash), 192 characters.
    pub sig: String,
}

/// Hashing and signing with one hash key and one stringifier.
#[derive(Debug, Clone, Copy)]
pub struct Crypto {
    key: HashKey,
    flavour: Flavour,
}

impl Default for Crypto {
    /// The default hash key and `safeStringify` (what the distributor and collector use).
    fn default() -> Self {
        Self::new(HashKey::default())
    }
}

impl Crypto {
    /// Crypto with the given hash key and the `safeStringify` stringifier.
    pub fn new(key: HashKey) -> Self {
        Self {
            key,
            flavour: Flavour::Safe,
        }
    }

    /// The same key with another stringifier.
    pub fn with_flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = flavour;
        self
    }

    /// The stringifier used by [`Crypto::hash_obj`].
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// Keyed BLAKE2b-256 of `data`.
    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(&self.key.0)
            .expect("32-byte keys are valid for BLAKE2b");
        Mac::update(&mut mac, data);
        mac.finalize().into_bytes().into()
    }

    /// Keyed BLAKE2b-256 of `data`, as lowercase hex.
    pub fn hash_hex(&self, data: &[u8]) -> String {
        hex::encode(self.hash(data))
    }

    /// Hash of the canonical JSON of `value`, as lowercase hex (`hashObj`).
    pub fn hash_obj(&self, value: &Value) -> String {
        let mut buf = Vec::with_capacity(256);
        crate::canonical::write_value(&mut buf, value, self.flavour);
        self.hash_hex(&buf)
    }

    /// Hash of an object's canonical JSON without its `sign` field.
    fn hash_unsigned(&self, map: &Map<String, Value>) -> [u8; 32] {
        let mut buf = Vec::with_capacity(256);
        write_object(&mut buf, map, self.flavour, Some("sign"));
        self.hash(&buf)
    }

    /// libsodium `crypto_sign` of a hash: 64-byte signature ‖ the 32 hash bytes.
    pub fn sign_hash(&self, hash: &[u8; 32], keys: &KeyPair) -> [u8; ATTACHED_SIG_LEN] {
        let mut out = [0u8; ATTACHED_SIG_LEN];
        out[..64].copy_from_slice(keys.inner.sign(hash).as_ref());
        out[64..].copy_from_slice(hash);
        out
    }

    /// Signs already-canonical JSON bytes (the fast path when the bytes exist anyway):
    /// returns the `sign` field that [`Crypto::sign_obj`] would set on the same object.
    pub fn sign_canonical(&self, canonical_json: &[u8], keys: &KeyPair) -> Sign {
        self.sign_of_hash(&self.hash(canonical_json), keys)
    }

    /// The `sign` field for an object whose [`Crypto::hash`] is `hash`.
    pub fn sign_of_hash(&self, hash: &[u8; 32], keys: &KeyPair) -> Sign {
        Sign {
            owner: keys.public.to_hex(),
            sig: hex::encode(self.sign_hash(hash, keys)),
        }
    }

    /// `signObj`: replaces `obj.sign` with a signature over the rest of the object.
    pub fn sign_obj(&self, obj: &mut Value, keys: &KeyPair) -> Result<()> {
        let what = kind(obj);
        let map = obj.as_object_mut().ok_or(Error::NotAnObject(what))?;
        map.remove("sign");
        let hash = self.hash_unsigned(map);
        let sig = hex::encode(self.sign_hash(&hash, keys));
        let mut sign = Map::new();
        sign.insert("owner".into(), Value::String(keys.public.to_hex()));
        sign.insert("sig".into(), Value::String(sig));
        map.insert("sign".into(), Value::Object(sign));
        Ok(())
    }

    /// `verifyObj`: checks `obj.sign` against the rest of the object and returns the signer.
    ///
    /// Never panics: malformed hex, wrong lengths, missing fields are [`Error`]s.
    pub fn verify_obj(&self, obj: &Value) -> Result<PublicKey> {
        let map = obj.as_object().ok_or(Error::NotAnObject(kind(obj)))?;
        let sign = map
            .get("sign")
            .ok_or(Error::MalformedSign("no `sign` field"))?
            .as_object()
            .ok_or(Error::MalformedSign("`sign` is not an object"))?;
        let owner = sign
            .get("owner")
            .and_then(Value::as_str)
            .ok_or(Error::MalformedSign("`sign.owner` is not a string"))?;
        let sig = sign
            .get("sig")
            .and_then(Value::as_str)
            .ok_or(Error::MalformedSign("`sign.sig` is not a string"))?;
        let hash = self.hash_unsigned(map);
        self.verify_hash(&hash, owner, sig)
    }

    /// Checks an attached signature (hex) by `owner` (hex) over `hash`.
    pub fn verify_hash(&self, hash: &[u8; 32], owner: &str, sig: &str) -> Result<PublicKey> {
        let owner_key = PublicKey::from_hex(owner)?;
        let sig = decode_hex::<ATTACHED_SIG_LEN>("signature", sig)?;
        if sig[64..] != hash[..] {
            return Err(Error::HashMismatch);
        }
        UnparsedPublicKey::new(&ED25519, &owner_key.0)
            .verify(&sig[64..], &sig[..64])
            .map_err(|_| Error::BadSignature {
                owner: owner.to_owned(),
            })?;
        Ok(owner_key)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_roundtrip_and_mismatch() {
        let kp = KeyPair::from_seed([3; 32]);
        let again = KeyPair::from_secret_hex(&kp.secret_key_hex()).unwrap();
        assert_eq!(again.public_key(), kp.public_key());
        let mut bad = kp.secret_key_hex();
        bad.replace_range(127.., "0");
        let bad = if bad == kp.secret_key_hex() {
            bad.replace_range(127.., "1");
            bad
        } else {
            bad
        };
        assert!(matches!(
            KeyPair::from_secret_hex(&bad),
            Err(Error::KeyMismatch)
        ));
        assert!(matches!(
            KeyPair::from_secret_hex("zz"),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn verify_rejects_malformed_without_panicking() {
        let c = Crypto::default();
        let cases = [
            serde_json::json!(1),
            serde_json::json!({}),
            serde_json::json!({"sign": 1}),
            serde_json::json!({"sign": {"owner": 1, "sig": "00"}}),
            serde_json::json!({"sign": {"owner": "zz", "sig": "00"}}),
            serde_json::json!({"sign": {"owner": "00".repeat(32), "sig": "0"}}),
            serde_json::json!({"sign": {"owner": "00".repeat(32), "sig": "00".repeat(95)}}),
            serde_json::json!({"sign": {"owner": "00".repeat(32), "sig": "00".repeat(96)}}),
            serde_json::json!({"sign": {"owner": "é".repeat(32), "sig": "é".repeat(96)}}),
        ];
        for case in cases {
            assert!(c.verify_obj(&case).is_err(), "{case}");
        }
    }
}
