//! The collector's typed client for the history HTTP API: signs each request with the
//! collector key and checks each reply's distributor signature.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firehose_distributor::http_client::HttpError> {
//! use firehose_core::crypto::{KeyPair, PublicKey};
//! use firehose_distributor::http_client::HttpClient;
//!
//! let api = HttpClient::new(
//!     "http://127.0.0.1:6100",
//!     KeyPair::generate(),
//!     PublicKey::from_hex(firehose_distributor::config::DEV_PUBLIC_KEY).unwrap(),
//! );
//! let totals = api.total_data().await?;
//! let receipts = api.receipts(0, 10, 1).await?;
//! println!("{} receipts in all; first page of cycles 0..=10: {}", totals["totalReceipts"], receipts.len());
//! # Ok(()) }
//! ```

use bytes::Bytes;
use firehose_core::canonical::{safe_parse, safe_stringify};
use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use firehose_core::records::{Cycle, OriginalTxData, Receipt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be sent or the reply read.
    #[error("http: {0}")]
    Transport(String),
    /// The reply is not signed by the distributor, or not JSON.
    #[error("bad reply: {0}")]
    BadReply(String),
    /// The distributor answered `{success: false, error}`.
    #[error("{status}: {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The distributor's message.
        error: String,
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

    /// POSTs `body` (with `sender` and `sign` added) to `path`; returns the verified reply.
    /// A busy distributor's `503` with `Retry-After` is retried after the wait it names (at
    /// most [`HttpClient::BUSY_RETRIES`] times, each wait at most 5 s).
    pub async fn post(&self, path: &str, mut body: Value) -> Result<Value, HttpError> {
        body["sender"] = json!(self.keys.public_key().to_hex());
        self.crypto
            .sign_obj(&mut body, &self.keys)
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let body = Bytes::from(safe_stringify(&body));
        let mut attempt = 0;
        let resp = loop {
            let req = hyper::Request::post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| HttpError::Transport(e.to_string()))?;
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Transport(e.to_string()))?;
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match retry_after {
                Some(secs) if resp.status() == 503 && attempt < Self::BUSY_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(secs.clamp(1, 5))).await;
                }
                _ => break resp,
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?
            .to_bytes();
        let text =
            std::str::from_utf8(&bytes).map_err(|_| HttpError::BadReply("not UTF-8".into()))?;
        let v =
            safe_parse(text).map_err(|e| HttpError::BadReply(format!("{status}: {e}: {text}")))?;
        let signer = self
            .crypto
            .verify_obj(&v)
            .map_err(|e| HttpError::BadReply(e.to_string()))?;
        if signer != self.distributor_key {
            return Err(HttpError::BadReply(format!(
                "signed by {signer}, not the distributor"
            )));
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

    /// `/totalData`.
    pub async fn total_data(&self) -> Result<Value, HttpError> {
        self.post("/totalData", json!({})).await
    }

    /// `/cycleinfo` for counters `start ..= end` (at most 100).
    pub async fn cycles(&self, start: u64, end: u64) -> Result<Vec<Value>, HttpError> {
        let v = self
            .post("/cycleinfo", json!({"start": start, "end": end}))
            .await?;
        list(&v, "cycleInfo")
    }

    /// `/receipt` page `page` (from 1, 100 per page) of cycles `start ..= end`.
    pub async fn receipts(
        &self,
        start: u64,
        end: u64,
        page: u64,
    ) -> Result<Vec<Receipt>, HttpError> {
        let v = self
            .post(
                "/receipt",
                json!({"startCycle": start, "endCycle": end, "page": page}),
            )
            .await?;
        typed(list(&v, "receipts")?)
    }

    /// `/originalTx` page `page` (from 1, 100 per page) of cycles `start ..= end`.
    pub async fn original_txs(
        &self,
        start: u64,
        end: u64,
        page: u64,
    ) -> Result<Vec<OriginalTxData>, HttpError> {
        let v = self
            .post(
                "/originalTx",
                json!({"startCycle": start, "endCycle": end, "page": page}),
            )
            .await?;
        typed(list(&v, "originalTxs")?)
    }
}

fn list(v: &Value, key: &str) -> Result<Vec<Value>, HttpError> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| HttpError::BadReply(format!("no `{key}` list")))
}

fn typed<T: serde::de::DeserializeOwned>(rows: Vec<Value>) -> Result<Vec<T>, HttpError> {
    rows.into_iter()
        .map(|r| serde_json::from_value(r).map_err(|e| HttpError::BadReply(e.to_string())))
        .collect()
}

/// Parses `/cycleinfo` records into typed cycles (marker = the record's `marker`).
pub fn cycles_from_records(records: &[Value]) -> Vec<Cycle> {
    records
        .iter()
        .filter_map(|r| {
            Some(Cycle {
                counter: r.get("counter")?.as_u64()?,
                cycle_marker: r.get("marker")?.as_str()?.to_owned(),
                cycle_record: r.clone(),
                extra: Default::default(),
            })
        })
        .collect()
}
