//! A subscription that never ends: reconnect with back-off, resume where it left off, and
//! fail over between distributors.

use std::time::Duration;

use firehose_core::crypto::PublicKey;
use firehose_core::message::SignedRecord;
use firehose_core::since::Since;
use futures::Stream;
use tokio_tungstenite::tungstenite;

use crate::ws::{Client, ClientConfig, ClientError, Subscription};

/// A subscription that never ends: it reconnects with back-off whenever the connection
/// drops (including a slow-consumer close), and resumes with `since` set to the last record
/// it handed out of each type, so nothing is missed or repeated across reconnects.
///
/// With several distributors ([`ResumingClient::with_fallback`]: over the same archiver data,
/// or archivers of the same network), a close or an error moves it to the next one, which it
/// resumes on from the same point; each distributor has its own back-off.
///
/// ```no_run
/// # async fn demo(cfg: firehose_client::ClientConfig) {
/// use firehose_client::ResumingClient;
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
    since: Since,
    sub: Option<Subscription>,
    endpoints: Vec<Endpoint>,
    /// The endpoint in use (or tried next).
    current: usize,
    connects: u64,
    resume: bool,
    /// Give up (return the error) when a distributor refuses the subscription.
    stop_on_refusal: bool,
}

/// One distributor to subscribe to, with its own back-off.
#[derive(Debug)]
struct Endpoint {
    url: String,
    key: PublicKey,
    backoff: Duration,
    /// Not tried again before this.
    not_before: tokio::time::Instant,
}

impl Endpoint {
    fn new(url: String, key: PublicKey) -> Self {
        Self {
            url,
            key,
            backoff: ResumingClient::MIN_BACKOFF,
            not_before: tokio::time::Instant::now(),
        }
    }

    /// A failure: not tried again for the back-off, which doubles.
    fn failed(&mut self) {
        self.not_before = tokio::time::Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(ResumingClient::MAX_BACKOFF);
    }
}

impl ResumingClient {
    /// Longest wait between reconnection attempts.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
    /// First wait between reconnection attempts (it doubles up to [`Self::MAX_BACKOFF`]).
    pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

    /// A client for `cfg`; `cfg.since` (if set) is where the first connection resumes.
    pub fn new(cfg: ClientConfig) -> Self {
        Self {
            since: cfg.since.clone().unwrap_or_default(),
            resume: true,
            endpoints: vec![Endpoint::new(cfg.url.clone(), cfg.distributor_key)],
            current: 0,
            cfg,
            sub: None,
            connects: 0,
            stop_on_refusal: false,
        }
    }

    /// Returns the refusal instead of retrying it when a distributor answers the
    /// subscription with `401` or `403` (an unlisted, expired or mistyped key): for tools
    /// that should stop and say why, where a long-running collector keeps trying.
    pub fn stop_on_refusal(mut self) -> Self {
        self.stop_on_refusal = true;
        self
    }

    /// Adds a distributor to fail over to, at `url`, whose messages are signed by `key`.
    pub fn with_fallback(mut self, url: &str, key: PublicKey) -> Self {
        self.endpoints
            .push(Endpoint::new(url.trim_end_matches('/').to_owned(), key));
        self
    }

    /// The URL of the distributor in use (or tried next).
    pub fn url(&self) -> &str {
        &self.endpoints[self.current].url
    }

    /// The resume point: the last record handed out of each type.
    pub fn since(&self) -> &Since {
        &self.since
    }

    /// Successful connections so far.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The next verified record. Connection problems are handled inside (logged, retried);
    /// an error is returned only for a message that fails verification (it is skipped), or,
    /// with [`ResumingClient::stop_on_refusal`], for a refused subscription.
    pub async fn next(&mut self) -> Result<SignedRecord, ClientError> {
        loop {
            let Some(sub) = self.sub.as_mut() else {
                self.connect().await?;
                continue;
            };
            match sub.next().await {
                Some(Ok(signed)) => {
                    self.since.advance(&signed.record);
                    self.endpoints[self.current].backoff = Self::MIN_BACKOFF;
                    return Ok(signed);
                }
                Some(Err(ClientError::BadMessage(e))) => return Err(ClientError::BadMessage(e)),
                Some(Err(ClientError::Closed {
                    code: firehose_core::protocol::CLOSE_RESUME_LATER,
                    reason,
                })) => {
                    // This distributor cannot serve the history right now: back off from it.
                    tracing::warn!(url = self.url(), %reason, "resume refused (1011)");
                    self.lost();
                }
                Some(Err(e)) => {
                    tracing::warn!(url = self.url(), error = %e, "distributor connection lost; resuming elsewhere");
                    self.lost();
                }
                None => {
                    tracing::warn!(
                        url = self.url(),
                        "distributor connection ended; resuming elsewhere"
                    );
                    self.lost();
                }
            }
        }
    }

    /// Closes the connection in use, if any, with a close frame (see [`Subscription::close`]).
    pub async fn close(&mut self) {
        if let Some(sub) = self.sub.take() {
            sub.close().await;
        }
    }

    /// This client as a [`Stream`] that never ends (it owns everything: spawn it anywhere).
    pub fn into_stream(self) -> impl Stream<Item = Result<SignedRecord, ClientError>> + Send {
        futures::stream::unfold(self, |mut c| async move {
            let item = c.next().await;
            Some((item, c))
        })
    }

    /// The connection in use failed: back off from its distributor and move to the next.
    fn lost(&mut self) {
        self.sub = None;
        self.endpoints[self.current].failed();
        self.current = (self.current + 1) % self.endpoints.len();
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            // The first distributor (from the current one on) that may be tried now, or a
            // wait until the earliest may.
            let now = tokio::time::Instant::now();
            let n = self.endpoints.len();
            let ready = (0..n)
                .map(|i| (self.current + i) % n)
                .find(|&i| self.endpoints[i].not_before <= now);
            let Some(i) = ready else {
                let earliest = self.endpoints.iter().map(|e| e.not_before).min();
                tokio::time::sleep_until(earliest.unwrap_or(now)).await;
                continue;
            };
            self.current = i;
            self.cfg.url = self.endpoints[i].url.clone();
            self.cfg.distributor_key = self.endpoints[i].key;
            self.cfg.since = (self.resume && !self.since.is_empty()).then(|| self.since.clone());
            match Client::connect(&self.cfg).await {
                Ok(sub) => {
                    // The back-off resets on the first record, not here: a distributor
                    // that accepts and closes at once is not hammered.
                    self.sub = Some(sub);
                    self.connects += 1;
                    return Ok(());
                }
                Err(ClientError::Ws(tungstenite::Error::Http(resp)))
                    if resp.status() == 400 && self.cfg.since.is_some() =>
                {
                    tracing::warn!(
                        url = self.url(),
                        "the distributor cannot resume (no database?): continuing live only"
                    );
                    self.resume = false;
                    continue;
                }
                Err(ClientError::Ws(tungstenite::Error::Http(resp)))
                    if self.stop_on_refusal && matches!(resp.status().as_u16(), 401 | 403) =>
                {
                    return Err(ClientError::Ws(tungstenite::Error::Http(resp)));
                }
                Err(e) => {
                    let e = e.to_string();
                    let endpoint = &mut self.endpoints[i];
                    tracing::warn!(url = %endpoint.url, error = %e, retry_in = ?endpoint.backoff, "cannot connect to the distributor");
                    endpoint.failed();
                    self.current = (i + 1) % n;
                }
            }
        }
    }
}
