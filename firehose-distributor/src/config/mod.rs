//! `distributor-config.json`: the original's keys, with environment overrides.

pub mod check;
pub mod keys;
mod overrides;
mod ranges;
pub mod source;

use std::path::{Path, PathBuf};

use firehose_core::crypto::{Crypto, HashKey, KeyPair, PublicKey, DEFAULT_HASH_KEY_HEX};
use firehose_dbstore::{Layout, StoreNames};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The original's dev key pair, its default when no keys are configured (a warning is
/// printed when it is used).
pub use firehose_core::protocol::{DEV_PUBLIC_KEY, DEV_SECRET_KEY};

/// One allow-listed collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscriber {
    /// The collector's public key (hex).
    pub public_key: String,
    /// Expiry in Unix ms; 0 = never.
    #[serde(default)]
    pub expiration_timestamp: u64,
    /// What it may subscribe to: `FIREHOSE` gets the stream; any other value (`ACCOUNTS`, or
    /// a type this version does not know) loads, and cannot subscribe to the stream.
    pub subscription_type: String,
}

/// The subscription type that gets the websocket stream.
pub const FIREHOSE: &str = "FIREHOSE";

impl Subscriber {
    /// Expired at `now_ms` (the correct rule; the original's test is inverted).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expiration_timestamp != 0 && self.expiration_timestamp <= now_ms
    }
}

/// The distributor's settings, under the original's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Advertised address.
    #[serde(rename = "DISTRIBUTOR_IP")]
    pub ip: String,
    /// HTTP + websocket port.
    #[serde(rename = "DISTRIBUTOR_PORT")]
    pub port: u16,
    /// Shardus hash key (hex).
    #[serde(rename = "DISTRIBUTOR_HASH_KEY")]
    pub hash_key: String,
    /// Public key that signs everything sent (hex).
    #[serde(rename = "DISTRIBUTOR_PUBLIC_KEY")]
    pub public_key: String,
    /// Secret key (hex, 64 bytes).
    #[serde(rename = "DISTRIBUTOR_SECRET_KEY")]
    pub secret_key: String,
    /// Older archivers: one SQLite file.
    #[serde(rename = "ARCHIVER_DB_PATH", skip_serializing_if = "Option::is_none")]
    pub archiver_db_path: Option<PathBuf>,
    /// Newer archivers: a directory of SQLite files.
    #[serde(rename = "ARCHIVER_DB_DIR", skip_serializing_if = "Option::is_none")]
    pub archiver_db_dir: Option<PathBuf>,
    /// The file names in `ARCHIVER_DB_DIR`, when they are not the standard ones.
    #[serde(rename = "ARCHIVER_DATA", skip_serializing_if = "Option::is_none")]
    pub archiver_data: Option<ArchiverData>,
    /// `WS` (websocket fan-out, the default) or `MQ` (publish to RabbitMQ); `DISTRIBUTOR_MODE`
    /// and `--mode` override it.
    #[serde(rename = "distributorMode", skip_serializing_if = "Option::is_none")]
    pub distributor_mode: Option<String>,
    /// The archiver's `data-logs/<ip>_<port>` directory.
    #[serde(rename = "DATA_LOG_DIR")]
    pub data_log_dir: PathBuf,
    /// Safety-net poll interval of the log readers (ms).
    #[serde(rename = "FILE_STREAM_INTERVAL_MS")]
    pub file_stream_interval_ms: u64,
    /// HTTP requests per minute per IP (loopback exempt); 0, the default, is unlimited (the
    /// original counts per 10 ms, which is unlimited in effect, so a remote sync is never
    /// throttled unless an operator opts in).
    #[serde(rename = "RATE_LIMIT")]
    pub rate_limit: u32,
    /// Enforce the allow-list.
    #[serde(rename = "limitToSubscribersOnly")]
    pub limit_to_subscribers_only: bool,
    /// The allow-list.
    pub subscribers: Vec<Subscriber>,
    /// Verbose logs.
    #[serde(rename = "VERBOSE")]
    pub verbose: bool,
    /// Per-client queue of messages; a client whose queue overflows is disconnected.
    #[serde(rename = "CLIENT_QUEUE_CAPACITY")]
    pub client_queue_capacity: usize,
    /// Longest time to receive an HTTP request's head, or to wait for the next one on an idle
    /// connection (ms); then the connection is closed (slowloris).
    #[serde(rename = "HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: u64,
    /// Connections not yet a websocket session (HTTP requests, upgrades), at once; more are
    /// closed at once.
    #[serde(rename = "MAX_PENDING_CONNECTIONS")]
    pub max_pending_connections: usize,
    /// Of those, from one source address (an IPv4 address or an IPv6 /64), so that one peer
    /// cannot fill the table.
    #[serde(rename = "MAX_PENDING_PER_ADDRESS")]
    pub max_pending_per_address: usize,
    /// Longest data-log line (bytes); a longer one is reported with its position and skipped.
    #[serde(rename = "MAX_LOG_LINE_BYTES")]
    pub max_log_line_bytes: usize,
    /// Longest wait for one back-fill message to be taken by a collector's socket; past it
    /// the session is closed with 4001, like a slow live one (ms).
    #[serde(rename = "BACKFILL_SEND_TIMEOUT_MS")]
    pub backfill_send_timeout_ms: u64,
    /// While another resuming collector waits for a back-fill slot, a back-fill that wrote
    /// fewer bytes a second than this over the last 5 s yields its slot (closed with 4001;
    /// the collector resumes later).
    #[serde(rename = "BACKFILL_MIN_BYTES_PER_SEC")]
    pub backfill_min_bytes_per_sec: u64,
    /// Back-fill a collector that subscribes without `since` from where its last connection
    /// ended ([`crate::backfill::positions`]); false: the original's live-only behaviour.
    #[serde(rename = "IMPLICIT_RESUME")]
    pub implicit_resume: bool,
    /// Where the remembered resume points are saved (the binary: `firehose-resume-state.json`
    /// beside the config file; none: kept in memory only).
    #[serde(rename = "RESUME_STATE_FILE", skip_serializing_if = "Option::is_none")]
    pub resume_state_file: Option<PathBuf>,
    /// Collector keys whose resume points are remembered; the one updated longest ago is
    /// forgotten first.
    #[serde(rename = "RESUME_MAX_KEYS")]
    pub resume_max_keys: usize,
    /// Entries a second an implicit resume sends (0: as fast as the collector reads):
    /// relayer-collector handles messages without back-pressure.
    #[serde(rename = "IMPLICIT_RESUME_RATE")]
    pub implicit_resume_rate: u64,
    /// Most entries one implicit resume sends; past it the session goes live and the gap is
    /// logged and counted.
    #[serde(rename = "IMPLICIT_RESUME_MAX")]
    pub implicit_resume_max: u64,
    /// Bytes a resume point stays behind what the collector's TCP acknowledged (0: exact).
    /// Set it to the buffering of a TCP-terminating proxy between the distributor and the
    /// collectors (a load balancer acknowledges what it has not passed on yet).
    #[serde(rename = "RESUME_ACK_MARGIN_BYTES")]
    pub resume_ack_margin_bytes: u64,
    /// The replay buffer: the most recent signed messages kept in memory, so that resuming
    /// collectors catch up from shared bytes without a database back-fill or a slot
    /// ([`crate::ws::replay`]); 0 turns it off.
    #[serde(rename = "REPLAY_BUFFER_BYTES")]
    pub replay_buffer_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ip: "localhost".into(),
            port: 6100,
            hash_key: DEFAULT_HASH_KEY_HEX.into(),
            public_key: DEV_PUBLIC_KEY.into(),
            secret_key: DEV_SECRET_KEY.into(),
            archiver_db_path: None,
            archiver_db_dir: None,
            archiver_data: None,
            distributor_mode: None,
            data_log_dir: PathBuf::from("data-logs"),
            file_stream_interval_ms: 100,
            rate_limit: 0,
            limit_to_subscribers_only: false,
            subscribers: Vec::new(),
            verbose: false,
            client_queue_capacity: 4096,
            backfill_send_timeout_ms: 30_000,
            backfill_min_bytes_per_sec: 4 << 20,
            implicit_resume: true,
            resume_state_file: None,
            resume_max_keys: 10_000,
            implicit_resume_rate: 500,
            implicit_resume_max: 100_000,
            resume_ack_margin_bytes: 0,
            replay_buffer_bytes: 256 << 20,
            header_read_timeout_ms: 10_000,
            max_pending_connections: 1024,
            max_pending_per_address: 256,
            max_log_line_bytes: firehose_logreader::lines::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// `ARCHIVER_DATA`: database file names in `ARCHIVER_DB_DIR` (a missing one keeps its
/// standard name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiverData {
    /// Cycles (`cycles.sqlite3`).
    #[serde(rename = "cycleDB", skip_serializing_if = "Option::is_none")]
    pub cycle_db: Option<String>,
    /// Receipts (`receipts.sqlite3`).
    #[serde(rename = "receiptDB", skip_serializing_if = "Option::is_none")]
    pub receipt_db: Option<String>,
    /// Original transactions (`originalTxsData.sqlite3`).
    #[serde(rename = "originalTxDataDB", skip_serializing_if = "Option::is_none")]
    pub original_tx_data_db: Option<String>,
    /// Accounts (`accounts.sqlite3`).
    #[serde(rename = "accountDB", skip_serializing_if = "Option::is_none")]
    pub account_db: Option<String>,
    /// Transactions (`transactions.sqlite3`).
    #[serde(rename = "transactionDB", skip_serializing_if = "Option::is_none")]
    pub transaction_db: Option<String>,
}

/// A configuration that cannot be used, said plainly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads a `distributor-config.json` (missing keys keep their defaults). Unknown keys are
    /// logged with the closest known key; one that looks like a misspelt security setting
    /// refuses the start (see [`Config::from_file_with`]).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_file_with(path, false)
    }

    /// [`Config::from_file`]; with `allow_unknown`, misspelt security settings are only
    /// logged.
    pub fn from_file_with(path: &Path, allow_unknown: bool) -> Result<Self, ConfigError> {
        let at = |e: &dyn std::fmt::Display| ConfigError(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| at(&e))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| at(&e))?;
        let known: Vec<String> = Self::settable_keys().into_iter().map(|(k, _)| k).collect();
        let unknown = crate::config::keys::unknown_keys(&value, &known);
        for u in &unknown {
            tracing::warn!(file = %path.display(), "{u}");
        }
        if let Some(u) = unknown.iter().find(|u| u.security && !allow_unknown) {
            return Err(at(&format_args!(
                "{u}: it looks like a security setting, and a misspelt one is silently off. Fix it, or start with --allow-unknown-keys"
            )));
        }
        serde_json::from_value(value).map_err(|e| at(&e))
    }

    /// The archiver database layout (`ARCHIVER_DB_DIR` with `ARCHIVER_DATA`, or
    /// `ARCHIVER_DB_PATH`), if one is configured.
    pub fn layout(&self) -> Option<Layout> {
        match (&self.archiver_db_dir, &self.archiver_db_path) {
            (Some(dir), _) => Some(match &self.archiver_data {
                None => Layout::Directory(dir.clone()),
                Some(data) => {
                    let std = StoreNames::default();
                    let pick = |v: &Option<String>, d: String| v.clone().unwrap_or(d);
                    Layout::Named(
                        dir.clone(),
                        StoreNames {
                            cycles: pick(&data.cycle_db, std.cycles),
                            receipts: pick(&data.receipt_db, std.receipts),
                            original_txs: pick(&data.original_tx_data_db, std.original_txs),
                            accounts: pick(&data.account_db, std.accounts),
                            transactions: pick(&data.transaction_db, std.transactions),
                        },
                    )
                }
            }),
            (None, Some(p)) => Some(Layout::SingleFile(p.clone())),
            (None, None) => None,
        }
    }

    /// Whether `distributorMode` is MQ (any case).
    pub fn is_mq(&self) -> bool {
        self.distributor_mode
            .as_deref()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("MQ"))
    }

    /// [`Config::backfill_send_timeout_ms`] as a duration (at least 1 ms).
    pub fn backfill_send_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.backfill_send_timeout_ms.max(1))
    }

    /// The crypto (hash key) to use.
    pub fn crypto(&self) -> Result<Crypto, ConfigError> {
        HashKey::from_hex(&self.hash_key)
            .map(Crypto::new)
            .map_err(|e| ConfigError(format!("DISTRIBUTOR_HASH_KEY: {e}")))
    }

    /// The signing key pair (checked against DISTRIBUTOR_PUBLIC_KEY).
    pub fn keys(&self) -> Result<KeyPair, ConfigError> {
        let kp = KeyPair::from_secret_hex(&self.secret_key)
            .map_err(|e| ConfigError(format!("DISTRIBUTOR_SECRET_KEY: {e}")))?;
        let pk = PublicKey::from_hex(&self.public_key)
            .map_err(|e| ConfigError(format!("DISTRIBUTOR_PUBLIC_KEY: {e}")))?;
        if kp.public_key() != pk {
            return Err(ConfigError(
                "DISTRIBUTOR_PUBLIC_KEY does not match DISTRIBUTOR_SECRET_KEY".into(),
            ));
        }
        Ok(kp)
    }

    /// True when the well-known dev keys are configured.
    pub fn uses_dev_keys(&self) -> bool {
        self.public_key == DEV_PUBLIC_KEY
    }

    /// Checks what can be checked before starting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::config::ranges::check(self)?;
        self.crypto()?;
        self.keys()?;
        if let Some(mode) = &self.distributor_mode {
            let m = mode.trim();
            if !m.eq_ignore_ascii_case("MQ") && !m.eq_ignore_ascii_case("WS") {
                return Err(ConfigError(format!(
                    "distributorMode `{mode}`: expected WS or MQ"
                )));
            }
        }
        // MQ mode publishes from the database: the logs are optional there.
        if !self.is_mq() && !self.data_log_dir.is_dir() {
            return Err(ConfigError(format!(
                "DATA_LOG_DIR {}: not a directory (the archiver's data-logs/<ip>_<port>)",
                self.data_log_dir.display()
            )));
        }
        for s in &self.subscribers {
            PublicKey::from_hex(&s.public_key)
                .map_err(|e| ConfigError(format!("subscriber {}: {e}", s.public_key)))?;
        }
        Ok(())
    }
}
