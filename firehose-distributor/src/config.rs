//! `distributor-config.json`: the original's keys, with environment overrides.

use std::path::{Path, PathBuf};

use firehose_core::crypto::{Crypto, HashKey, KeyPair, PublicKey, DEFAULT_HASH_KEY_HEX};
use firehose_core::subscription::SubscriptionType;
use serde::{Deserialize, Serialize};

/// The original's dev public key (printed warnings when used).
pub const DEV_PUBLIC_KEY: &str = "758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3";
/// The original's dev secret key.
pub const DEV_SECRET_KEY: &str = "3be00019f23847529bd63e41124864983175063bb524bd54ea3c155f2fa12969758b1c119412298802cd28dbfa394cdfeecc4074492d60844cc192d632d84de3";

/// One allow-listed collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscriber {
    /// The collector's public key (hex).
    pub public_key: String,
    /// Expiry in Unix ms; 0 = never.
    #[serde(default)]
    pub expiration_timestamp: u64,
    /// What it may subscribe to.
    pub subscription_type: SubscriptionType,
}

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
            data_log_dir: PathBuf::from("data-logs"),
            file_stream_interval_ms: 100,
            rate_limit: 0,
            limit_to_subscribers_only: false,
            subscribers: Vec::new(),
            verbose: false,
            client_queue_capacity: 4096,
        }
    }
}

/// A configuration that cannot be used, said plainly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads a `distributor-config.json` (missing keys keep their defaults).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Applies environment variables named like the keys (`DISTRIBUTOR_PORT=6200`, ...).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let mut v = serde_json::to_value(&*self).expect("config serialises");
        let map = v.as_object_mut().expect("an object");
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys
            .iter()
            .map(String::as_str)
            .chain(["ARCHIVER_DB_PATH", "ARCHIVER_DB_DIR"])
        {
            if let Some(val) = get(key) {
                let parsed = match &map.get(key) {
                    Some(serde_json::Value::String(_)) | None => serde_json::Value::String(val),
                    _ => serde_json::from_str(&val)
                        .map_err(|e| ConfigError(format!("environment {key}={val}: {e}")))?,
                };
                map.insert(key.to_owned(), parsed);
            }
        }
        *self = serde_json::from_value(v).map_err(|e| ConfigError(format!("environment: {e}")))?;
        Ok(())
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
        self.crypto()?;
        self.keys()?;
        if !self.data_log_dir.is_dir() {
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
