//! MQ mode: publish every signed record to RabbitMQ exchanges, like the original's
//! `DISTRIBUTOR_MODE=MQ`, so that collectors on many machines consume their own queues.
//!
//! - [`publisher`]: reads the archiver's SQLite database (cycles by counter; original txs and
//!   receipts by cycle window, re-publishing a row whose timestamp grew while its cycle is
//!   still within [`MqConfig::lag_cycles`] of the newest), signs each record once and
//!   publishes it on a confirm channel. The live data logs only wake it up, so new data goes
//!   out within milliseconds; a poll is the safety net.
//! - `plan` (inside the publisher): what one round publishes and what is still open.
//! - [`service`]: MQ mode as a whole: the publisher, woken by the data logs, and the HTTP
//!   API on the same listener, until shutdown.
//! - [`state`]: the cursor ("every cycle up to N is published and confirmed"), written to a
//!   small state file of our own only after the broker confirmed; a restart resumes there.
//! - the collector side (verified typed records, ack after the handler) is
//!   `firehose_client::mq::MqConsumer`.
//!
//! Wire compatibility with relayer-collector's MQ consumers: fanout exchanges, routing key
//! `""`, persistent messages with a 1-day expiration, bodies
//! `safeStringify(signObj({cycle|originalTx|receipt: row}))`. Beyond the original, every
//! message carries a `message_id` property ([`message_id`]): the same record published twice
//! (after a restart, say) carries the same id, so consumers can de-duplicate.

mod plan;
pub mod publisher;

pub mod state;

use crate::metrics::Counter;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use firehose_core::records::DataType;

use crate::config::ConfigError;

/// Exchange names per data type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanges {
    /// `RMQ_CYCLES_EXCHANGE_NAME`.
    pub cycles: String,
    /// `RMQ_ORIGINAL_TXS_EXCHANGE_NAME` (older originals: `RMQ_TRANSACTIONS_EXCHANGE_NAME`).
    pub original_txs: String,
    /// `RMQ_RECEIPTS_EXCHANGE_NAME`.
    pub receipts: String,
}

impl Exchanges {
    /// The exchange of `t`.
    pub fn of(&self, t: DataType) -> &str {
        match t {
            DataType::Cycle => &self.cycles,
            DataType::OriginalTx => &self.original_txs,
            DataType::Receipt => &self.receipts,
        }
    }
}

/// Settings of MQ mode.
#[derive(Debug, Clone)]
pub struct MqConfig {
    /// AMQP URI (from `RMQ_PROTOCOL`, `RMQ_HOST`, `RMQ_PORT`, `RMQ_USER`, `RMQ_PASS`,
    /// `RMQ_VHOST`).
    pub uri: String,
    /// Where each data type is published.
    pub exchanges: Exchanges,
    /// Declare durable queues `<prefix>.cycles`, `<prefix>.originalTxs`, `<prefix>.receipts`
    /// bound to the exchanges (`--mq-queue-prefix`), so a new deployment works out of the box.
    pub queue_prefix: Option<String>,
    /// The cursor file (`MQ_STATE_FILE`).
    pub state_file: PathBuf,
    /// The original distributor's checkpoint database (`MQ_ORIGINAL_CHECKPOINT`, default
    /// `db/checkpoints.db` in the working directory, where the original keeps it): read once,
    /// when the state file does not exist yet, so a switch-over does not publish from cycle 0.
    pub original_checkpoint: Option<PathBuf>,
    /// Cycles this close to the newest stay open for late data (the original: 3).
    pub lag_cycles: u64,
    /// Cycles read per round while catching up (the original: 5).
    pub batch_cycles: u64,
    /// Safety-net poll interval (the original polled every 200 ms, without wake-ups).
    pub poll_interval: Duration,
    /// Message expiration (the original: 1 day).
    pub expiration: Duration,
    /// Attempts per batch when the broker nacks (the original: 3).
    pub confirm_attempts: u32,
}

impl MqConfig {
    /// Reads the original's `RMQ_*` variables (and ours, `MQ_*`); `data_dir` holds the default
    /// state file.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        data_dir: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let var = |k: &str, default: &str| get(k).unwrap_or_else(|| default.to_owned());
        let uri = firehose_core::protocol::mq::broker_uri(&get)
            .map_err(|e| ConfigError(e.to_string()))?;
        let number = |k: &str, default: u64| -> Result<u64, ConfigError> {
            get(k).map_or(Ok(default), |v| {
                v.parse().map_err(|e| ConfigError(format!("{k}={v}: {e}")))
            })
        };
        let cfg = Self {
            uri,
            exchanges: Exchanges {
                cycles: var("RMQ_CYCLES_EXCHANGE_NAME", "cycles"),
                original_txs: get("RMQ_ORIGINAL_TXS_EXCHANGE_NAME")
                    .or_else(|| get("RMQ_TRANSACTIONS_EXCHANGE_NAME"))
                    .unwrap_or_else(|| "originalTxs".into()),
                receipts: var("RMQ_RECEIPTS_EXCHANGE_NAME", "receipts"),
            },
            queue_prefix: get("MQ_QUEUE_PREFIX").filter(|p| !p.is_empty()),
            state_file: get("MQ_STATE_FILE")
                .map_or_else(|| data_dir.join("firehose-mq-state.json"), PathBuf::from),
            original_checkpoint: Some(PathBuf::from(var(
                "MQ_ORIGINAL_CHECKPOINT",
                "db/checkpoints.db",
            )))
            .filter(|p| !p.as_os_str().is_empty()),
            lag_cycles: number("MQ_LAG_CYCLES", 3)?,
            batch_cycles: number("MQ_BATCH_CYCLES", 5)?.max(1),
            poll_interval: Duration::from_millis(number("MQ_POLL_MS", 200)?.max(10)),
            expiration: Duration::from_millis(number("MQ_EXPIRATION_MS", 24 * 60 * 60 * 1000)?),
            confirm_attempts: number("MQ_CONFIRM_ATTEMPTS", 3)?.clamp(1, 100) as u32,
        };
        for name in [
            &cfg.exchanges.cycles,
            &cfg.exchanges.original_txs,
            &cfg.exchanges.receipts,
        ] {
            if name.is_empty() || name.len() > 255 {
                return Err(ConfigError(format!(
                    "exchange name `{name}`: 1 to 255 bytes"
                )));
            }
        }
        Ok(cfg)
    }

    /// The AMQP URI without the password (for logs).
    pub fn redacted_uri(&self) -> String {
        firehose_core::protocol::mq::redacted(&self.uri)
    }
}

pub use firehose_core::protocol::mq::queue_names;

/// Declares the durable fanout exchanges (idempotent: existing ones are kept).
pub async fn declare_exchanges(
    channel: &lapin::Channel,
    exchanges: &Exchanges,
) -> lapin::Result<()> {
    use lapin::options::ExchangeDeclareOptions;
    for t in DataType::ALL {
        channel
            .exchange_declare(
                exchanges.of(t).into(),
                lapin::ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Declares the exchanges and, for the consumer group `prefix`, durable queues
/// [`queue_names`] bound to them (idempotent: existing ones are kept).
pub async fn declare_group(
    channel: &lapin::Channel,
    exchanges: &Exchanges,
    prefix: &str,
) -> lapin::Result<()> {
    use lapin::options::{QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    declare_exchanges(channel, exchanges).await?;
    for (t, q) in queue_names(prefix) {
        channel
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                q.as_str().into(),
                exchanges.of(t).into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

pub use firehose_core::protocol::mq::message_id;

/// What the publisher has done (for `/metrics`).
#[derive(Debug, Default)]
pub struct MqStats {
    /// Messages handed to the broker.
    pub published: Counter,
    /// Messages the broker confirmed.
    pub confirmed: Counter,
    /// Messages published again after a nack or a lost connection.
    pub retried: Counter,
    /// Connections made to the broker after the first.
    pub reconnects: Counter,
    /// 1 while connected.
    pub connected: AtomicU64,
    /// Cursor: every cycle up to this is published and confirmed (+1; 0 = none yet).
    pub through_plus_one: AtomicU64,
    /// Newest cycle in the database (+1; 0 = none yet).
    pub newest_plus_one: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_core::records::Record;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_the_original_variables() {
        let c = MqConfig::from_env(
            env(&[
                ("RMQ_HOST", "mq.example"),
                ("RMQ_PORT", "5673"),
                ("RMQ_USER", "collector@1"),
                ("RMQ_PASS", "p:w/d"),
                ("RMQ_CYCLES_EXCHANGE_NAME", "c"),
                ("RMQ_TRANSACTIONS_EXCHANGE_NAME", "t"),
                ("RMQ_RECEIPTS_EXCHANGE_NAME", "r"),
            ]),
            "/var/lib/d".as_ref(),
        )
        .unwrap();
        assert_eq!(c.uri, "amqp://collector%401:p%3Aw%2Fd@mq.example:5673/%2F");
        assert_eq!(
            c.redacted_uri(),
            "amqp://collector%401:***@mq.example:5673/%2F"
        );
        assert_eq!(c.exchanges.of(DataType::OriginalTx), "t");
        assert_eq!(
            c.state_file,
            PathBuf::from("/var/lib/d/firehose-mq-state.json")
        );
        assert_eq!((c.lag_cycles, c.batch_cycles), (3, 5));
        // The newer original's name wins over the older one.
        let c = MqConfig::from_env(
            env(&[
                ("RMQ_TRANSACTIONS_EXCHANGE_NAME", "old"),
                ("RMQ_ORIGINAL_TXS_EXCHANGE_NAME", "new"),
            ]),
            "/".as_ref(),
        )
        .unwrap();
        assert_eq!(c.exchanges.original_txs, "new");
    }

    #[test]
    fn bad_settings_are_refused_clearly() {
        let e = MqConfig::from_env(env(&[("RMQ_PORT", "x")]), "/".as_ref()).unwrap_err();
        assert!(e.to_string().contains("RMQ_PORT"), "{e}");
        let e = MqConfig::from_env(env(&[("RMQ_PROTOCOL", "http")]), "/".as_ref()).unwrap_err();
        assert!(e.to_string().contains("RMQ_PROTOCOL"), "{e}");
        let e = MqConfig::from_env(env(&[("MQ_LAG_CYCLES", "-1")]), "/".as_ref()).unwrap_err();
        assert!(e.to_string().contains("MQ_LAG_CYCLES"), "{e}");
    }

    #[test]
    fn message_ids_name_the_record_version() {
        let spec = firehose_dbstore::fixture::FixtureSpec::default();
        let (c, txs, receipts) = firehose_dbstore::fixture::records_of_cycle(&spec, 7);
        assert!(message_id(&c).starts_with("cycle:7:"));
        let Record::Receipt(mut r) = receipts[0].clone() else {
            panic!()
        };
        let a = message_id(&Record::Receipt(r.clone()));
        r.timestamp += 1;
        assert_ne!(a, message_id(&Record::Receipt(r)));
        assert!(message_id(&txs[0]).starts_with("originalTx:"));
    }
}
