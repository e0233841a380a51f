//! The MQ publisher: SQLite → signed messages → RabbitMQ, with confirms and a durable cursor.
//!
//! Each round reads a window of cycles, from just after the cursor up to `batch_cycles`
//! (at least `lag_cycles + 1`) cycles on:
//! - cycle records not published yet;
//! - original txs and receipts whose key (cycle, timestamp, id) is new, or whose timestamp
//!   grew since they were published (the original's late-data rule). Only the keys are read
//!   to find them; only the rows to publish are read in full.
//!
//! Everything found is signed once and published in (cycle, timestamp, id) order per data
//! type, in batches that wait for the broker's confirms (a nacked batch is published again, up
//! to `confirm_attempts` times). Only then does the cursor move: to the end of the window,
//! but never closer than `lag_cycles` to the newest cycle, whose rows may still change. The
//! cursor is saved in the state file after each move. After a restart, the cycles after the
//! cursor are published again: duplicates, with the same `message_id`, never gaps.
//!
//! A lost broker connection is retried with back-off; publishing resumes from what was
//! confirmed. Database errors (locked, missing) are logged and retried on the next round.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firehose_core::crypto::{Crypto, KeyPair};
use firehose_dbstore::ArchiverDb;
use firehose_logreader::LogTail;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::plan::{Item, Open, Signer};
use super::state::{Cursor, StateError, StateFile};
use super::{MqConfig, MqStats};

/// Messages published before waiting for their confirms.
const CONFIRM_BATCH: usize = 1000;
/// How long to wait for a connection or a batch's confirms before giving up on the connection.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// After a wake-up from the logs, look again this soon (the database commit may trail the log).
const FOLLOW_UP: Duration = Duration::from_millis(25);

/// Errors that stop the publisher.
#[derive(Debug, thiserror::Error)]
pub enum MqError {
    /// The archiver database could not be opened.
    #[error("archiver database: {0}")]
    Db(#[from] firehose_dbstore::Error),
    /// The cursor file.
    #[error(transparent)]
    State(#[from] StateError),
    /// `MQ_LAG_CYCLES` past its bound.
    #[error("MQ_LAG_CYCLES={0}: at most 1000")]
    LagCycles(u64),
    /// The broker refused a declaration: an exchange or queue of that name exists with
    /// other settings. Retrying cannot help.
    #[error("the broker refused to declare the exchanges (or queues): {why}. One of that name exists with other settings; this publisher needs durable fanout exchanges ({exchanges}), as the original's. Delete the old one or choose other names (RMQ_*_EXCHANGE_NAME, --mq-queue-prefix)")]
    Precondition {
        /// The broker's message.
        why: String,
        /// The exchanges this publisher declares.
        exchanges: String,
    },
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("database: {0}")]
    Db(#[from] firehose_dbstore::Error),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker: no confirms within 30 s")]
    NoConfirms,
    #[error("broker: messages refused {0} times")]
    Refused(u32),
    #[error("{0} task: {1}")]
    Task(&'static str, #[source] tokio::task::JoinError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The publisher (see the module docs). Build it with [`Publisher::new`], run it with
/// [`Publisher::run`].
pub struct Publisher {
    cfg: MqConfig,
    signer: Arc<Signer>,
    state: StateFile,
    cursor: Cursor,
    open: Open,
    stats: Arc<MqStats>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("uri", &self.cfg.redacted_uri())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher of `db` signing with `keys`; reads the cursor from the state file.
    pub fn new(
        cfg: MqConfig,
        db: ArchiverDb,
        crypto: Crypto,
        keys: KeyPair,
    ) -> Result<Self, MqError> {
        if cfg.lag_cycles > 1000 {
            return Err(MqError::LagCycles(cfg.lag_cycles));
        }
        let state = StateFile::new(&cfg.state_file);
        let cursor = match &cfg.original_checkpoint {
            Some(original) if !state.exists() && original.is_file() => {
                let cursor = super::state::import_original(original)?;
                tracing::info!(from = %original.display(), through = ?cursor.through, "no MQ state file yet: starting from the original distributor's checkpoint");
                cursor
            }
            _ => state.load()?,
        };
        let stats = Arc::new(MqStats::default());
        stats
            .through_plus_one
            .store(cursor.through.map_or(0, |t| t + 1), Relaxed);
        Ok(Self {
            cfg,
            signer: Arc::new(Signer {
                db: Mutex::new(db),
                crypto,
                keys,
            }),
            state,
            cursor,
            open: Open::default(),
            stats,
        })
    }

    /// The counters (shared; they keep counting while [`run`](Self::run) runs).
    pub fn stats(&self) -> Arc<MqStats> {
        self.stats.clone()
    }

    /// The cursor as loaded or last saved.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Publishes until `shutdown` completes, reconnecting whenever the broker goes away.
    /// `wake` (a tail of the data logs) makes new data go out at once; without it the
    /// publisher polls every `poll_interval`.
    pub async fn run(
        mut self,
        mut wake: Option<LogTail>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), MqError> {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(250);
        let mut connected_before = false;
        tracing::info!(broker = %self.cfg.redacted_uri(), cursor = ?self.cursor.through, "MQ publisher starting");
        loop {
            let conn = tokio::select! {
                c = tokio::time::timeout(BROKER_TIMEOUT, connect(&self.cfg)) => c,
                () = &mut shutdown => return Ok(()),
            };
            let (conn, channel) = match conn {
                Ok(Ok(c)) => c,
                Ok(Err(e)) if precondition_failed(&e).is_some() => {
                    // Retrying cannot help: say what to change and stop.
                    let why = precondition_failed(&e).unwrap_or_default();
                    let e = &self.cfg.exchanges;
                    return Err(MqError::Precondition {
                        why,
                        exchanges: format!("{}, {}, {}", e.cycles, e.original_txs, e.receipts),
                    });
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach the broker");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
                Err(_) => {
                    tracing::warn!("broker connection timed out");
                    continue;
                }
            };
            if connected_before {
                self.stats.reconnects.inc();
            }
            connected_before = true;
            backoff = Duration::from_millis(250);
            self.stats.connected.store(1, Relaxed);
            tracing::info!("connected to the broker");
            let outcome = self.serve(&channel, &mut wake, &mut shutdown).await;
            self.stats.connected.store(0, Relaxed);
            let _ =
                tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await;
            match outcome {
                Ok(()) => {
                    tracing::info!(cursor = ?self.cursor.through, "MQ publisher stopped");
                    return Ok(());
                }
                Err(RoundError::State(e)) => return Err(e.into()),
                Err(e) => tracing::warn!(error = %e, "broker connection lost; reconnecting"),
            }
        }
    }

    /// Rounds on one connection until shutdown (`Ok`) or a broker error.
    async fn serve(
        &mut self,
        channel: &Channel,
        wake: &mut Option<LogTail>,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<(), RoundError> {
        let mut next_round = tokio::time::Instant::now();
        loop {
            let woke = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                () = tokio::time::sleep_until(next_round) => false,
                ev = async { match wake.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                } } => {
                    if ev.is_none() {
                        tracing::warn!("data-log tail stopped; polling only");
                        *wake = None;
                    }
                    // Coalesce a burst of wake-ups into one round.
                    while let Some(t) = wake.as_mut() {
                        if t.try_recv().is_none() { break; }
                    }
                    true
                }
            };
            // Catch up round after round; stop between rounds on shutdown.
            loop {
                match self.round(channel).await {
                    Ok(true) => {
                        if futures::FutureExt::now_or_never(shutdown.as_mut()).is_some() {
                            return Ok(());
                        }
                    }
                    Ok(false) => break,
                    Err(RoundError::Db(e)) => {
                        tracing::warn!(error = %e, "archiver database; retrying");
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            // After a wake-up, look once more soon: the archiver may commit after it logs.
            next_round = tokio::time::Instant::now()
                + if woke {
                    FOLLOW_UP
                } else {
                    self.cfg.poll_interval
                };
        }
    }

    /// One round; `true` if there is more to catch up on right away.
    async fn round(&mut self, channel: &Channel) -> Result<bool, RoundError> {
        let span = self.cfg.batch_cycles.max(self.cfg.lag_cycles + 1);
        let signer = self.signer.clone();
        let cursor = self.cursor;
        let open = std::mem::take(&mut self.open);
        let (open, plan) = tokio::task::spawn_blocking(move || {
            let plan = signer.plan(cursor, &open, span);
            (open, plan)
        })
        .await
        .map_err(|e| RoundError::Task("planning", e))?;
        self.open = open;
        let plan = plan?;
        let Some(newest) = plan.newest else {
            return Ok(false);
        };
        self.stats.newest_plus_one.store(newest + 1, Relaxed);
        for batch in plan.items.chunks(CONFIRM_BATCH) {
            self.publish_confirmed(channel, batch).await?;
            for it in batch {
                self.open.record(it);
            }
        }
        if let Some(settled) = newest.checked_sub(self.cfg.lag_cycles) {
            let through = plan.hi.min(settled);
            if self.cursor.through.is_none_or(|t| through > t) {
                self.cursor.through = Some(through);
                self.open.settle(through);
                let (state, cursor) = (self.state.clone(), self.cursor);
                tokio::task::spawn_blocking(move || state.save(cursor))
                    .await
                    .map_err(|e| RoundError::Task("state", e))??;
                self.stats.through_plus_one.store(through + 1, Relaxed);
            }
        }
        // Behind the settled point: another round moves the cursor again.
        Ok(match newest.checked_sub(self.cfg.lag_cycles) {
            Some(settled) => self.cursor.through.is_none_or(|t| t < settled),
            None => false,
        })
    }

    /// Publishes `batch` and waits for the broker to confirm all of it, publishing it again
    /// after a nack (up to `confirm_attempts` times).
    async fn publish_confirmed(&self, channel: &Channel, batch: &[Item]) -> Result<(), RoundError> {
        let expiration = self.cfg.expiration.as_millis().to_string();
        for attempt in 1..=self.cfg.confirm_attempts {
            let mut confirms = Vec::with_capacity(batch.len());
            for it in batch {
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_expiration(expiration.as_str().into())
                    .with_message_id(it.message_id.as_str().into());
                let confirm = channel
                    .basic_publish(
                        self.cfg.exchanges.of(it.data_type).into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &it.body,
                        props,
                    )
                    .await
                    .inspect_err(|_| {
                        self.stats.retried.inc_by(batch.len() as u64);
                    })?;
                self.stats.published.inc();
                confirms.push(confirm);
            }
            let mut nacked = 0usize;
            let wait = async {
                for c in confirms {
                    if !c.await?.is_ack() {
                        nacked += 1;
                    }
                }
                Ok::<_, lapin::Error>(())
            };
            match tokio::time::timeout(BROKER_TIMEOUT, wait).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.stats.retried.inc_by(batch.len() as u64);
                    return Err(e.into());
                }
                Err(_) => {
                    self.stats.retried.inc_by(batch.len() as u64);
                    return Err(RoundError::NoConfirms);
                }
            }
            if nacked == 0 {
                self.stats.confirmed.inc_by(batch.len() as u64);
                return Ok(());
            }
            tracing::warn!(
                nacked,
                attempt,
                "the broker refused messages; publishing the batch again"
            );
            self.stats.retried.inc_by(batch.len() as u64);
        }
        Err(RoundError::Refused(self.cfg.confirm_attempts))
    }
}

/// The broker's message when `e` is AMQP's 406 PRECONDITION_FAILED (a declaration that
/// does not match what exists).
fn precondition_failed(e: &lapin::Error) -> Option<String> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406 => {
            Some(amqp.get_message().to_string())
        }
        _ => None,
    }
}

/// Connects, opens a confirm channel, declares the exchanges (and the queues of a consumer
/// group if configured).
async fn connect(cfg: &MqConfig) -> lapin::Result<(Connection, Channel)> {
    let props = ConnectionProperties::default().with_connection_name("firehose-distributor".into());
    let conn = Connection::connect(&cfg.uri, props).await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    match &cfg.queue_prefix {
        Some(prefix) => super::declare_group(&channel, &cfg.exchanges, prefix).await?,
        None => super::declare_exchanges(&channel, &cfg.exchanges).await?,
    }
    Ok((conn, channel))
}
