//! Environment variables and `--KEY value` arguments over the config file, read as the
//! original reads them: any number, string or boolean key (and JSON for objects), by the
//! type of the key's value.

use serde_json::Value;

use crate::config::{Config, ConfigError};

/// Keys that may be absent from the serialised config, with the type of their value.
const OPTIONAL_KEYS: [(&str, Kind); 5] = [
    ("RESUME_STATE_FILE", Kind::String),
    ("ARCHIVER_DB_PATH", Kind::String),
    ("ARCHIVER_DB_DIR", Kind::String),
    ("ARCHIVER_DATA", Kind::Json),
    ("distributorMode", Kind::String),
];

/// How an override's text becomes a value, by the type of the key's value (the original's
/// rules: numbers with `Number()`, booleans `true` in any case, objects as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Number,
    String,
    Json,
}

impl Config {
    /// Every key that environment variables and `--KEY value` arguments can set, with the
    /// type of its value.
    pub(crate) fn settable_keys() -> Vec<(String, Kind)> {
        let v = serde_json::to_value(Config::default()).expect("config serialises");
        let mut keys: Vec<(String, Kind)> = v
            .as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| {
                let kind = match v {
                    Value::Bool(_) => Kind::Bool,
                    Value::Number(_) => Kind::Number,
                    Value::String(_) | Value::Null => Kind::String,
                    Value::Array(_) | Value::Object(_) => Kind::Json,
                };
                (k.clone(), kind)
            })
            .collect();
        keys.extend(
            OPTIONAL_KEYS
                .iter()
                .map(|(k, kind)| ((*k).to_owned(), *kind)),
        );
        keys
    }

    /// Applies environment variables named like the keys (`DISTRIBUTOR_PORT=6200`,
    /// `limitToSubscribersOnly=TRUE`, `subscribers=[...]`), as the original does.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let pairs: Vec<(String, String)> = Self::settable_keys()
            .into_iter()
            .filter_map(|(k, _)| get(&k).filter(|v| !v.is_empty()).map(|v| (k, v)))
            .collect();
        self.apply_overrides(&pairs, "environment")
    }

    /// Takes the original's `--KEY value` (or `--KEY=value`; a boolean key alone means `true`)
    /// arguments for number, string and boolean keys out of `args`; returns them and the
    /// arguments left for the command-line parser.
    pub fn split_args(
        args: impl IntoIterator<Item = String>,
    ) -> (Vec<(String, String)>, Vec<String>) {
        let keys = Self::settable_keys();
        let kind_of = |k: &str| keys.iter().find(|(key, _)| key == k).map(|(_, kind)| *kind);
        let mut pairs = Vec::new();
        let mut rest = Vec::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                rest.push(arg);
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            match kind_of(name) {
                Some(Kind::Json) | None => rest.push(arg),
                Some(kind) => {
                    let value = inline.or_else(|| {
                        let takes_next = args.peek().is_some_and(|next| !next.starts_with("--"));
                        if takes_next {
                            args.next()
                        } else if kind == Kind::Bool {
                            Some("true".to_owned())
                        } else {
                            None
                        }
                    });
                    pairs.push((name.to_owned(), value.unwrap_or_default()));
                }
            }
        }
        (pairs, rest)
    }

    /// Sets `(key, text)` pairs, each converted by the type of the key's value.
    pub fn apply_overrides(
        &mut self,
        pairs: &[(String, String)],
        source: &str,
    ) -> Result<(), ConfigError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let keys = Self::settable_keys();
        let mut v = serde_json::to_value(&*self).expect("config serialises");
        let map = v.as_object_mut().expect("an object");
        for (key, text) in pairs {
            let kind = keys
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| ConfigError(format!("{source}: unknown key {key}")))?;
            let bad =
                |e: &dyn std::fmt::Display| ConfigError(format!("{source} {key}={text}: {e}"));
            let value = match kind {
                Kind::Bool => Value::Bool(parse_bool(key, text).map_err(|e| bad(&e))?),
                Kind::Number => Value::Number(
                    serde_json::from_str::<serde_json::Number>(text.trim()).map_err(|e| bad(&e))?,
                ),
                Kind::String => Value::String(text.clone()),
                Kind::Json => firehose_core::canonical::safe_parse(text).map_err(|e| bad(&e))?,
            };
            map.insert(key.clone(), value);
        }
        *self = serde_json::from_value(v).map_err(|e| ConfigError(format!("{source}: {e}")))?;
        Ok(())
    }
}

/// A boolean as the original reads it: `true` in any case, anything else false. A security
/// switch (`limitToSubscribersOnly`) must be `true` or `false` (any case) instead: the
/// original reads `1` or `yes` silently as false, which turns the allow-list off.
fn parse_bool(key: &str, text: &str) -> Result<bool, &'static str> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("false") || !crate::config::keys::SECURITY.contains(&key) {
        Ok(false)
    } else {
        Err("a security switch takes true or false (in any case); refused rather than read as false")
    }
}
