//! The collector side: connect with a signed subscription request, verify every message's
//! distributor signature, yield typed records.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firehose_distributor::client::ClientError> {
//! use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
//! use firehose_distributor::client::{Client, ClientConfig};
//!
//! let cfg = ClientConfig::new(
//!     "ws://127.0.0.1:6100",
//!     KeyPair::generate(),
//!     PublicKey::from_hex(firehose_distributor::config::DEV_PUBLIC_KEY).unwrap(),
//! );
//! let mut sub = Client::connect(&cfg).await?;
//! while let Some(msg) = sub.next().await {
//!     let signed = msg?;
//!     println!("{} {}", signed.record.data_type(), signed.record.id());
//! }
//! # Ok(()) }
//! ```

use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use firehose_core::message::SignedRecord;
use firehose_core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where and as whom to connect.
#[derive(Debug)]
pub struct ClientConfig {
    /// `ws://host:port` of the distributor.
    pub url: String,
    /// The collector's keys.
    pub keys: KeyPair,
    /// The distributor's public key: every message must be signed by it.
    pub distributor_key: PublicKey,
    /// Hash key and stringifier.
    pub crypto: Crypto,
    /// Resume point: when set, the distributor back-fills everything after it first.
    pub since: Option<crate::resume::Since>,
    /// Wire encoding to ask for (JSON text frames by default; MessagePack binary frames).
    pub encoding: firehose_core::codec::Encoding,
}

impl ClientConfig {
    /// With the default hash key.
    pub fn new(url: &str, keys: KeyPair, distributor_key: PublicKey) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            keys,
            distributor_key,
            crypto: Crypto::default(),
            since: None,
            encoding: firehose_core::codec::Encoding::Json,
        }
    }

    /// The upgrade URL with a freshly signed request.
    pub fn signed_url(&self) -> String {
        let mut req = SubscriptionRequest::new(
            SubscriptionType::Firehose,
            self.keys.public_key(),
            crate::auth::now_ms(),
        );
        if self.encoding == firehose_core::codec::Encoding::MessagePack {
            req.extra_info.insert("encoding".into(), "msgpack".into());
        }
        if let Some(since) = &self.since {
            req.extra_info.insert(
                "since".into(),
                serde_json::to_value(since).expect("since serialises"),
            );
        }
        let signed = req.sign(&self.crypto, &self.keys);
        format!("{}/?data={}", self.url, encode_query_value(&signed))
    }
}

/// What can go wrong on the collector side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or reading failed (a refused subscription shows as HTTP 401 here).
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// A message that does not verify or parse.
    #[error("bad message: {0}")]
    BadMessage(#[from] firehose_core::Error),
    /// The distributor closed the stream.
    #[error("closed by the distributor: {code} {reason}")]
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Connects collectors.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Opens a live subscription.
    pub async fn connect(cfg: &ClientConfig) -> Result<Subscription<'_>, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(cfg.signed_url()).await?;
        Ok(Subscription { cfg, ws })
    }
}

/// A live subscription.
#[derive(Debug)]
pub struct Subscription<'a> {
    cfg: &'a ClientConfig,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Subscription<'_> {
    /// The next verified record; `None` when the connection ends without a close frame.
    pub async fn next(&mut self) -> Option<Result<SignedRecord, ClientError>> {
        next_record(&mut self.ws, self.cfg).await
    }

    /// The raw next message (for tests that check bytes).
    pub async fn next_raw(&mut self) -> Option<Result<Message, ClientError>> {
        self.ws.next().await.map(|r| r.map_err(ClientError::from))
    }
}

/// Reads the next message of `ws` and verifies it (close frames become
/// [`ClientError::Closed`]).
async fn next_record(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
    cfg: &ClientConfig,
) -> Option<Result<SignedRecord, ClientError>> {
    loop {
        let msg = match ws.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(e.into())),
        };
        let bytes = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => {
                let value: serde_json::Value =
                    match firehose_core::codec::Encoding::MessagePack.decode(&b) {
                        Ok(v) => v,
                        Err(e) => return Some(Err(e.into())),
                    };
                firehose_core::canonical::safe_stringify(&value).into_bytes()
            }
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                return Some(Err(ClientError::Closed { code, reason }));
            }
            _ => continue,
        };
        return Some(
            SignedRecord::verify_json(&cfg.crypto, &bytes, &cfg.distributor_key)
                .map_err(ClientError::from),
        );
    }
}

/// A subscription that never ends: it reconnects with back-off whenever the connection
/// drops (including a slow-consumer close), and resumes with `since` set to the last record
/// it handed out of each type, so nothing is missed or repeated across reconnects.
///
/// ```no_run
/// # async fn demo(cfg: firehose_distributor::client::ClientConfig) {
/// use firehose_distributor::client::ResumingClient;
///
/// let mut client = ResumingClient::new(cfg);
/// loop {
///     match client.next().await {
///         Ok(signed) => println!("{}", signed.record.id()),
///         Err(e) => eprintln!("skipped a bad message: {e}"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ResumingClient {
    cfg: ClientConfig,
    since: crate::resume::Since,
    ws: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    backoff: std::time::Duration,
    connects: u64,
    resume: bool,
}

impl ResumingClient {
    /// Longest wait between reconnection attempts.
    pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

    /// A client for `cfg`; `cfg.since` (if set) is where the first connection resumes.
    pub fn new(cfg: ClientConfig) -> Self {
        Self {
            since: cfg.since.clone().unwrap_or_default(),
            resume: true,
            cfg,
            ws: None,
            backoff: std::time::Duration::from_millis(100),
            connects: 0,
        }
    }

    /// The resume point: the last record handed out of each type.
    pub fn since(&self) -> &crate::resume::Since {
        &self.since
    }

    /// Successful connections so far.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The next verified record. Connection problems are handled inside (logged, retried);
    /// an error is returned only for a message that fails verification (it is skipped).
    pub async fn next(&mut self) -> Result<SignedRecord, ClientError> {
        loop {
            let Some(ws) = self.ws.as_mut() else {
                self.connect().await;
                continue;
            };
            match next_record(ws, &self.cfg).await {
                Some(Ok(signed)) => {
                    self.since.advance(&signed.record);
                    self.backoff = std::time::Duration::from_millis(100);
                    return Ok(signed);
                }
                Some(Err(ClientError::BadMessage(e))) => return Err(ClientError::BadMessage(e)),
                Some(Err(ClientError::Closed { code: 1011, reason })) => {
                    // The distributor cannot serve the history right now: back off.
                    tracing::warn!(%reason, retry_in = ?self.backoff, "resume refused (1011)");
                    self.ws = None;
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "distributor connection lost; reconnecting");
                    self.ws = None;
                }
                None => {
                    tracing::warn!("distributor connection ended; reconnecting");
                    self.ws = None;
                }
            }
        }
    }

    async fn connect(&mut self) {
        loop {
            let has_point = self.since != crate::resume::Since::default();
            self.cfg.since = (self.resume && has_point).then(|| self.since.clone());
            match tokio_tungstenite::connect_async(self.cfg.signed_url()).await {
                Ok((ws, _)) => {
                    // The back-off resets on the first record, not here: a distributor
                    // that accepts and closes at once is not hammered.
                    self.ws = Some(ws);
                    self.connects += 1;
                    return;
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(resp))
                    if resp.status() == 400 && self.cfg.since.is_some() =>
                {
                    tracing::warn!(
                        "the distributor cannot resume (no database?): continuing live only"
                    );
                    self.resume = false;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "cannot connect to the distributor");
                }
            }
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
        }
    }
}
