//! The error type of `firehose-core`.

/// Everything that can go wrong in `firehose-core`: parsing, keys, signatures, codecs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hex string did not decode (odd length or a non-hex digit).
    #[error("{what}: invalid hex: {source}")]
    Hex {
        /// Which value was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        source: hex::FromHexError,
    },
    /// A key, hash or signature had the wrong number of bytes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// Which value had the wrong length.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it had.
        got: usize,
    },
    /// A secret key whose public half does not match its seed.
    #[error("secret key: public half does not match the seed")]
    KeyMismatch,
    /// `sign_obj`/`verify_obj` need a JSON object.
    #[error("expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The object has no `sign` field, or it is not `{owner: string, sig: string}`.
    #[error("missing or malformed `sign` field: {0}")]
    MalformedSign(&'static str),
    /// The message attached to the signature is not the hash of the object.
    #[error("signature does not cover this object (hash mismatch)")]
    HashMismatch,
    /// The Ed25519 signature does not verify with the owner's key.
    #[error("invalid ed25519 signature for owner {owner}")]
    BadSignature {
        /// The claimed signer (hex public key).
        owner: String,
    },
    /// JSON nested deeper than JavaScript's parser and stringifier take
    /// ([`crate::jscompat::MAX_NESTING`]).
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(usize),
    /// JSON that does not parse, or does not have the shape of the expected type.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// MessagePack encoding failed.
    #[error("MessagePack encode: {0}")]
    MsgpackEncode(#[from] rmp_serde::encode::Error),
    /// MessagePack decoding failed.
    #[error("MessagePack decode: {0}")]
    MsgpackDecode(#[from] rmp_serde::decode::Error),
    /// A value that cannot be represented the way JavaScript would (e.g. a non-finite number).
    #[error("unsupported value: {0}")]
    Unsupported(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn decode_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N]> {
    if s.len() != N * 2 {
        return Err(Error::Length {
            what,
            expected: N,
            got: s.len() / 2,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|source| Error::Hex { what, source })?;
    Ok(out)
}
