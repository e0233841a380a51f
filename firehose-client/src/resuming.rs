//! A subscription that never ends: reconnect with back-off, resume where it left off.

use std::time::Duration;

use firehose_core::message::SignedRecord;
use firehose_core::since::Since;
use futures::Stream;
use tokio_tungstenite::tungstenite;

use crate::ws::{Client, ClientConfig, ClientError, Subscription};

/// A subscription that never ends: it reconnects with back-off whenever the connection
/// drops (including a slow-consumer close), and resumes with `since` set to the last record
/// it handed out of each type, so nothing is missed or repeated across reconnects.
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
    backoff: Duration,
    connects: u64,
    resume: bool,
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
            cfg,
            sub: None,
            backoff: Self::MIN_BACKOFF,
            connects: 0,
        }
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
    /// an error is returned only for a message that fails verification (it is skipped).
    pub async fn next(&mut self) -> Result<SignedRecord, ClientError> {
        loop {
            let Some(sub) = self.sub.as_mut() else {
                self.connect().await;
                continue;
            };
            match sub.next().await {
                Some(Ok(signed)) => {
                    self.since.advance(&signed.record);
                    self.backoff = Self::MIN_BACKOFF;
                    return Ok(signed);
                }
                Some(Err(ClientError::BadMessage(e))) => return Err(ClientError::BadMessage(e)),
                Some(Err(ClientError::Closed { code: 1011, reason })) => {
                    // The distributor cannot serve the history right now: back off.
                    tracing::warn!(%reason, retry_in = ?self.backoff, "resume refused (1011)");
                    self.sub = None;
                    self.sleep().await;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "distributor connection lost; reconnecting");
                    self.sub = None;
                }
                None => {
                    tracing::warn!("distributor connection ended; reconnecting");
                    self.sub = None;
                }
            }
        }
    }

    /// This client as a [`Stream`] that never ends (it owns everything: spawn it anywhere).
    pub fn into_stream(self) -> impl Stream<Item = Result<SignedRecord, ClientError>> + Send {
        futures::stream::unfold(self, |mut c| async move {
            let item = c.next().await;
            Some((item, c))
        })
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Self::MAX_BACKOFF);
    }

    async fn connect(&mut self) {
        loop {
            self.cfg.since = (self.resume && !self.since.is_empty()).then(|| self.since.clone());
            match Client::connect(&self.cfg).await {
                Ok(sub) => {
                    // The back-off resets on the first record, not here: a distributor
                    // that accepts and closes at once is not hammered.
                    self.sub = Some(sub);
                    self.connects += 1;
                    return;
                }
                Err(ClientError::Ws(tungstenite::Error::Http(resp)))
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
            self.sleep().await;
        }
    }
}
