//! Settings: the original's `[web_socket]` TOML keys, plus this connector's own.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::codec::Marshaller;

/// Which side dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The connector dials the node (`ws://host:port/save`) and redials after failures.
    #[default]
    Client,
    /// The connector listens; nodes dial it (route `/save`), many at once.
    Server,
}

/// Default largest message (one block), MiB: blocks run to tens of MiB; this leaves headroom.
pub const DEFAULT_MAX_MESSAGE_MIB: usize = 128;

/// Everything the connector needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `host:port`, `:port`, or `ws://host:port[/save]`.
    pub url: String,
    /// Client or server.
    pub mode: Mode,
    /// Envelope encoding.
    pub marshaller: Marshaller,
    /// Wait between reconnection attempts (client mode).
    pub retry_duration: Duration,
    /// Do not ack a block that could not be processed (so a node in client mode resends it).
    pub blocking_ack_on_error: bool,
    /// Sender-side setting of the original, accepted for compatibility (acks are sent whenever
    /// a message asks for one).
    pub with_acknowledge: bool,
    /// Sender-side setting of the original, accepted for compatibility.
    pub acknowledge_timeout: Duration,
    /// Sender-side setting of the original, accepted for compatibility.
    pub drop_messages_if_no_connection: bool,
    /// The `version` key (read for compatibility; acks carry no version, as the original's).
    pub version: u32,
    /// Largest websocket message accepted (a whole block), bytes.
    pub max_message_size: usize,
    /// Largest websocket frame accepted, bytes.
    pub max_frame_size: usize,
    /// Print only blocks of this shard (others are acked and skipped).
    pub shard: Option<u32>,
    /// Server mode: observers connected at once (more wait in the kernel's backlog).
    pub max_connections: usize,
    /// Server mode: bytes all connections together may hold: each reserves its largest
    /// message and that message's lines ([`crate::budget`]), which bounds the connections
    /// served at once ([`crate::Connector::connection_cap`]).
    pub message_budget: usize,
    /// Server mode: longest websocket handshake; a slower peer is dropped.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: "localhost:22111".into(),
            mode: Mode::Client,
            marshaller: Marshaller::Protobuf,
            retry_duration: Duration::from_secs(5),
            blocking_ack_on_error: true,
            with_acknowledge: true,
            acknowledge_timeout: Duration::from_secs(5),
            drop_messages_if_no_connection: false,
            version: 1,
            max_message_size: DEFAULT_MAX_MESSAGE_MIB << 20,
            max_frame_size: DEFAULT_MAX_MESSAGE_MIB << 20,
            shard: None,
            max_connections: 16,
            message_budget: 2048 << 20,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The `[web_socket]` section of the original's `config.toml`; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSection {
    /// `url`.
    pub url: Option<String>,
    /// `marshaller_type`: `gogo protobuf` or `json`.
    pub marshaller_type: Option<String>,
    /// `mode`: `client` or `server`.
    pub mode: Option<String>,
    /// `retry_duration` in seconds.
    pub retry_duration: Option<u64>,
    /// `with_acknowledge`.
    pub with_acknowledge: Option<bool>,
    /// `acknowledge_timeout_in_sec`.
    pub acknowledge_timeout_in_sec: Option<u64>,
    /// `blocking_ack_on_error`.
    pub blocking_ack_on_error: Option<bool>,
    /// `drop_messages_if_no_connection`.
    pub drop_messages_if_no_connection: Option<bool>,
    /// `version`.
    pub version: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct FileConfig {
    web_socket: Option<WebSocketSection>,
}

/// The keys of `[web_socket]` the original reads.
pub const KNOWN_KEYS: [&str; 9] = [
    "url",
    "marshaller_type",
    "mode",
    "retry_duration",
    "with_acknowledge",
    "acknowledge_timeout_in_sec",
    "blocking_ack_on_error",
    "drop_messages_if_no_connection",
    "version",
];

/// Keys of `[web_socket]` in `text` that the original does not read, each with the closest
/// known key (a misspelt key would be ignored silently).
pub fn unknown_keys(text: &str) -> Vec<(String, &'static str)> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(ws) = table.get("web_socket").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    ws.keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .map(|k| {
            let closest = KNOWN_KEYS
                .iter()
                .min_by_key(|c| strsim::levenshtein(&k.to_ascii_lowercase(), c))
                .copied()
                .unwrap_or("url");
            (k.clone(), closest)
        })
        .collect()
}

/// A config problem, said plainly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads the `[web_socket]` section of a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let file: FileConfig =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        for (key, closest) in unknown_keys(&text) {
            tracing::warn!(file = %path.display(), "unknown key `web_socket.{key}` (did you mean `{closest}`?)");
        }
        let mut cfg = Config::default();
        if let Some(ws) = file.web_socket {
            cfg.apply(&ws)
                .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?;
        }
        Ok(cfg)
    }

    /// Applies the keys that are set.
    pub fn apply(&mut self, ws: &WebSocketSection) -> Result<(), ConfigError> {
        if let Some(u) = &ws.url {
            self.url = u.clone();
        }
        if let Some(m) = &ws.marshaller_type {
            self.marshaller = Marshaller::from_config(m).ok_or_else(|| {
                ConfigError(format!(
                    "marshaller_type `{m}`: expected `gogo protobuf` or `json`"
                ))
            })?;
        }
        if let Some(m) = &ws.mode {
            self.mode = match m.to_ascii_lowercase().as_str() {
                "client" => Mode::Client,
                "server" => Mode::Server,
                _ => {
                    return Err(ConfigError(format!(
                        "mode `{m}`: expected `client` or `server`"
                    )))
                }
            };
        }
        if let Some(r) = ws.retry_duration {
            if r == 0 {
                return Err(ConfigError("retry_duration must be > 0 seconds".into()));
            }
            self.retry_duration = Duration::from_secs(r);
        }
        if let Some(v) = ws.with_acknowledge {
            self.with_acknowledge = v;
        }
        if let Some(v) = ws.acknowledge_timeout_in_sec {
            self.acknowledge_timeout = Duration::from_secs(v);
        }
        if let Some(v) = ws.blocking_ack_on_error {
            self.blocking_ack_on_error = v;
        }
        if let Some(v) = ws.drop_messages_if_no_connection {
            self.drop_messages_if_no_connection = v;
        }
        if let Some(v) = ws.version {
            self.version = v;
        }
        Ok(())
    }

    /// The URL client mode dials: `ws://host:port/save` from any accepted form.
    pub fn dial_url(&self) -> String {
        let u = self.url.trim();
        let (scheme, rest) = match u.split_once("://") {
            Some((s, r)) => (s, r),
            None => ("ws", u),
        };
        let host = rest.split('/').next().unwrap_or(rest);
        format!("{scheme}://{host}/save")
    }

    /// The address server mode listens on: `host:port` (`:port` means all interfaces).
    pub fn listen_addr(&self) -> String {
        let u = self.url.trim();
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        let host = rest.split('/').next().unwrap_or(rest);
        if host.starts_with(':') {
            format!("0.0.0.0{host}")
        } else {
            host.to_owned()
        }
    }
}

#[cfg(test)]
mod unknown_key_tests {
    #[test]
    fn misspelt_keys_get_the_closest_known_one() {
        let text =
            "[web_socket]\nurl = \"x\"\nblocking_ack_on_eror = true\nmarshaler_type = \"json\"\n";
        let mut u = super::unknown_keys(text);
        u.sort();
        assert_eq!(
            u,
            [
                ("blocking_ack_on_eror".to_owned(), "blocking_ack_on_error"),
                ("marshaler_type".to_owned(), "marshaller_type"),
            ]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let mut c = Config::default();
        for (url, dial, listen) in [
            (
                "localhost:22111",
                "ws://localhost:22111/save",
                "localhost:22111",
            ),
            ("ws://127.0.0.1:5", "ws://127.0.0.1:5/save", "127.0.0.1:5"),
            (
                "wss://node.example:443/other",
                "wss://node.example:443/save",
                "node.example:443",
            ),
            (":22111", "ws://:22111/save", "0.0.0.0:22111"),
        ] {
            c.url = url.into();
            assert_eq!(c.dial_url(), dial);
            assert_eq!(c.listen_addr(), listen);
        }
    }

    #[test]
    fn original_config_file() {
        let dir = std::env::temp_dir().join(format!("fwc-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(&p, "[web_socket]\nurl = \"localhost:22111\"\nmarshaller_type = \"json\"\nmode = \"server\"\nretry_duration = 2\nwith_acknowledge = true\nacknowledge_timeout_in_sec = 5\nblocking_ack_on_error = false\ndrop_messages_if_no_connection = false\nversion = 1\n").unwrap();
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.mode, Mode::Server);
        assert_eq!(c.marshaller, Marshaller::Json);
        assert_eq!(c.retry_duration, Duration::from_secs(2));
        assert!(!c.blocking_ack_on_error);
        std::fs::write(&p, "[web_socket]\nmode = \"sideways\"\n").unwrap();
        assert!(Config::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("sideways"));
        std::fs::write(&p, "[web_socket]\nretry_duration = 0\n").unwrap();
        assert!(Config::from_file(&p).is_err());
    }
}
