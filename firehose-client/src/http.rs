//! The history HTTP API's transport: each request signed with the collector key, each reply's
//! distributor signature checked, a busy distributor's `503` retried after its `Retry-After`.
//! The typed routes are in [`crate::history`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), firehose_client::HttpError> {
//! use firehose_client::HttpClient;
//! use firehose_core::crypto::{KeyPair, PublicKey};
//! use firehose_core::records::Receipt;
//!
//! let distributor = PublicKey::from_hex(
//!     "758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3",
//! ).unwrap();
//! let api = HttpClient::new("http://127.0.0.1:6100", KeyPair::generate(), distributor);
//! let totals = api.total_data().await?;
//! let receipts = api.keyed::<Receipt>().in_cycles(0, 10, 1).await?;
//! println!("{} receipts in all; first page of cycles 0..=10: {}", totals.receipts, receipts.len());
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;
use firehose_core::canonical::{safe_parse, safe_stringify};
use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// What can go wrong calling the API. Every variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL or a header could not make a request.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// Connecting or sending failed.
    #[error("http: {0}")]
    Transport(#[from] hyper_util::client::legacy::Error),
    /// The reply's body could not be read.
    #[error("http body: {0}")]
    Body(#[from] hyper::Error),
    /// The reply is not JSON.
    #[error("reply ({status}) is not JSON: {source}")]
    NotJson {
        /// HTTP status.
        status: u16,
        /// The parser's complaint.
        source: firehose_core::Error,
    },
    /// The reply's signature does not verify.
    #[error("reply signature: {0}")]
    Signature(#[source] firehose_core::Error),
    /// The reply is signed by another key than the distributor's.
    #[error("reply signed by {0}, not the distributor")]
    WrongSigner(PublicKey),
    /// The distributor answered `{success: false, error}`.
    #[error("{status}: {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The distributor's message.
        error: String,
    },
    /// The reply lacks the field this route answers with, or it has another type.
    #[error("reply has no `{0}` of the expected type")]
    Missing(&'static str),
    /// A row of the reply does not have the record's shape.
    #[error("a `{key}` row: {source}")]
    Row {
        /// The reply's list.
        key: &'static str,
        /// The decoder's complaint.
        source: serde_json::Error,
    },
}

/// A signed-request client for one distributor.
#[derive(Debug)]
pub struct HttpClient {
    base: String,
    keys: KeyPair,
    distributor_key: PublicKey,
    crypto: Crypto,
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// Retries of a request the distributor answers with `503` and `Retry-After` (busy).
    pub const BUSY_RETRIES: u32 = 5;
    /// The longest `Retry-After` wait honoured (longer ones are cut to it).
    pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str, keys: KeyPair, distributor_key: PublicKey) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            keys,
            distributor_key,
            crypto: Crypto::default(),
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Uses another hash key than Shardus's default.
    pub fn with_crypto(mut self, crypto: Crypto) -> Self {
        self.crypto = crypto;
        self
    }

    /// POSTs `body` (with `sender` and `sign` added) to `path`; returns the verified reply.
    /// A busy distributor's `503` with `Retry-After` is retried after the wait it names (at
    /// most [`HttpClient::BUSY_RETRIES`] times, each wait at most
    /// [`HttpClient::MAX_RETRY_WAIT`]).
    pub async fn post(&self, path: &str, mut body: Value) -> Result<Value, HttpError> {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("sender".into(), json!(self.keys.public_key().to_hex()));
        }
        self.crypto
            .sign_obj(&mut body, &self.keys)
            .map_err(HttpError::Signature)?;
        let body = Bytes::from(safe_stringify(&body));
        let mut attempt = 0;
        let resp = loop {
            let req = hyper::Request::post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))?;
            let resp = self.inner.request(req).await?;
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match retry_after {
                Some(secs) if resp.status() == 503 && attempt < Self::BUSY_RETRIES => {
                    attempt += 1;
                    let wait = Duration::from_secs(secs)
                        .clamp(Duration::from_secs(1), Self::MAX_RETRY_WAIT);
                    tokio::time::sleep(wait).await;
                }
                _ => break resp,
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let v = safe_parse(&text).map_err(|source| HttpError::NotJson { status, source })?;
        let signer = self.crypto.verify_obj(&v).map_err(HttpError::Signature)?;
        if signer != self.distributor_key {
            return Err(HttpError::WrongSigner(signer));
        }
        if v.get("success") == Some(&Value::Bool(false)) {
            let error = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(HttpError::Refused { status, error });
        }
        Ok(v)
    }
}
