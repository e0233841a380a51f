//! The live stream: connect with a signed subscription request, verify every message's
//! distributor signature, yield typed records.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firehose_client::ClientError> {
//! use firehose_client::{Client, ClientConfig};
//! use firehose_core::crypto::{KeyPair, PublicKey};
//! use futures::StreamExt;
//!
//! let distributor = PublicKey::from_hex(
//!     "758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3",
//! ).unwrap();
//! let cfg = ClientConfig::new("ws://127.0.0.1:6100", KeyPair::generate(), distributor);
//! let mut sub = Client::connect(&cfg).await?;
//! while let Some(msg) = sub.next().await {
//!     let signed = msg?;
//!     println!("{} {}", signed.record.data_type(), signed.record.id());
//! }
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use firehose_core::codec::Encoding;
use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use firehose_core::message::SignedRecord;
use firehose_core::since::{now_ms, Since};
use firehose_core::subscription::{SubscriptionRequest, SubscriptionType};
use futures::{Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
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
    pub since: Option<Since>,
    /// Wire encoding to ask for (JSON text frames by default; MessagePack binary frames).
    pub encoding: Encoding,
    /// Without `since`: let the distributor resume from the point it remembers for this key
    /// (true, the default, as relayer-collector gets); false: live from now on.
    pub implicit_resume: bool,
}

impl ClientConfig {
    /// With the default hash key, live only, JSON.
    pub fn new(url: &str, keys: KeyPair, distributor_key: PublicKey) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            keys,
            distributor_key,
            crypto: Crypto::default(),
            since: None,
            encoding: Encoding::Json,
            implicit_resume: true,
        }
    }

    /// The upgrade URL with a freshly signed request.
    pub fn signed_url(&self) -> String {
        let mut req =
            SubscriptionRequest::new(SubscriptionType::Firehose, self.keys.public_key(), now_ms());
        req.since = self.since.clone();
        req.encoding = self.encoding;
        req.implicit_resume = self.implicit_resume;
        format!(
            "{}/?data={}",
            self.url,
            req.signed_query(&self.crypto, &self.keys)
        )
    }
}

/// What can go wrong on the collector side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or reading failed (a refused subscription shows as HTTP 401 here).
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// A message that does not verify or parse (it is skipped; the stream goes on).
    #[error("bad message: {0}")]
    BadMessage(#[from] firehose_core::Error),
    /// The distributor closed the stream.
    #[error("closed by the distributor: {code} {reason}")]
    Closed {
        /// Close code ([`firehose_core::protocol`]: 4001 slow consumer, 1011 resume refused, 1001
        /// going away, 1000 replaced).
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Connects collectors.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Opens a subscription (a back-fill first if `cfg.since` is set).
    pub async fn connect(cfg: &ClientConfig) -> Result<Subscription, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(cfg.signed_url()).await?;
        Ok(Subscription {
            ws,
            verifier: Verifier {
                crypto: cfg.crypto,
                distributor_key: cfg.distributor_key,
            },
        })
    }
}

/// Checks messages against the distributor's key.
#[derive(Debug, Clone, Copy)]
struct Verifier {
    crypto: Crypto,
    distributor_key: PublicKey,
}

impl Verifier {
    /// The record of a data message; a close frame becomes [`ClientError::Closed`];
    /// `None` for control frames.
    fn message(&self, msg: Message) -> Option<Result<SignedRecord, ClientError>> {
        let verify = |json: &[u8]| {
            SignedRecord::verify_json(&self.crypto, json, &self.distributor_key)
                .map_err(ClientError::from)
        };
        match msg {
            Message::Text(t) => Some(verify(t.as_bytes())),
            Message::Binary(b) => Some(
                Encoding::MessagePack
                    .decode::<serde_json::Value>(&b)
                    .map_err(ClientError::from)
                    .and_then(|v| verify(firehose_core::canonical::safe_stringify(&v).as_bytes())),
            ),
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                Some(Err(ClientError::Closed { code, reason }))
            }
            _ => None,
        }
    }
}

/// A live subscription: a [`Stream`] of verified records that owns its connection (spawn it
/// onto any task). It ends (`None`) when the connection ends; a close frame is yielded first
/// as [`ClientError::Closed`].
#[derive(Debug)]
pub struct Subscription {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    verifier: Verifier,
}

impl Subscription {
    /// The next verified record (the same as [`StreamExt::next`]).
    pub async fn next(&mut self) -> Option<Result<SignedRecord, ClientError>> {
        StreamExt::next(self).await
    }

    /// Closes the connection politely (close frame 1000, then waits briefly for the
    /// distributor's echo), so the distributor sees a normal departure rather than a reset.
    pub async fn close(mut self) {
        use futures::SinkExt as _;
        if self.ws.close(None).await.is_ok() {
            // The echo of our close frame, or the end of the stream.
            let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        }
        let _ = self.ws.flush().await;
    }

    /// The raw next message, unverified (for tools that check bytes).
    pub async fn next_raw(&mut self) -> Option<Result<Message, ClientError>> {
        self.ws.next().await.map(|r| r.map_err(ClientError::from))
    }
}

impl Stream for Subscription {
    type Item = Result<SignedRecord, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let msg = match ready!(self.ws.poll_next_unpin(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(m)) => m,
            };
            if let Some(item) = self.verifier.message(msg) {
                return Poll::Ready(Some(item));
            }
        }
    }
}
