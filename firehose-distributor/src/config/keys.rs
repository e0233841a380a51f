//! Keys of `distributor-config.json` that this version does not know.
//!
//! A misspelt key is ignored by a JSON reader, and a misspelt security setting silently turns
//! it off (`"limitToSubscriberOnly": true` leaves the allow-list off, a misspelt
//! `expirationTimestamp` makes a subscriber never expire). So every unknown key is reported
//! with the closest known one, and one that looks like a security setting refuses the start
//! (unless the operator says otherwise).

use serde_json::Value;

/// Keys of the original's config file that this distributor accepts and does not need.
const ORIGINAL_ONLY: [&str; 5] = [
    "NUMBER_OF_WORKERS",
    "MAX_CLIENTS_PER_CHILD",
    "DISTRIBUTOR_LOGS",
    "MQ_DISTRIBUTOR_SERVER_PORT",
    "RMQ_HEALTHCHECK_PORT",
];

/// Settings whose misspelling weakens security.
pub(crate) const SECURITY: [&str; 8] = [
    "limitToSubscribersOnly",
    "subscribers",
    "DISTRIBUTOR_SECRET_KEY",
    "DISTRIBUTOR_PUBLIC_KEY",
    "DISTRIBUTOR_HASH_KEY",
    "publicKey",
    "expirationTimestamp",
    "subscriptionType",
];

/// Keys of one `subscribers` entry.
const SUBSCRIBER_KEYS: [&str; 3] = ["publicKey", "expirationTimestamp", "subscriptionType"];

/// One key the file has and this version does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Where: `KEY` or `subscribers[2].KEY`.
    pub path: String,
    /// The closest known key.
    pub closest: String,
    /// It looks like a security setting.
    pub security: bool,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown key `{}` (did you mean `{}`?)",
            self.path, self.closest
        )
    }
}

/// The closest of `known` to `key` by edit distance (case folded), and that distance.
fn closest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> (String, usize) {
    let k = key.to_ascii_lowercase();
    known
        .into_iter()
        .map(|c| (c, strsim::levenshtein(&k, &c.to_ascii_lowercase())))
        .min_by_key(|(_, d)| *d)
        .map_or((String::new(), usize::MAX), |(c, d)| (c.to_owned(), d))
}

/// A key counts as security-looking when it is close to a security setting, or names one of
/// their words.
fn looks_secure(key: &str, closest: &str, distance: usize) -> bool {
    let k = key.to_ascii_lowercase();
    (SECURITY.contains(&closest) && distance <= 4)
        || [
            "subscriber",
            "secret",
            "expiration",
            "publickey",
            "hash_key",
        ]
        .iter()
        .any(|w| k.contains(w))
}

/// The unknown keys of a parsed config file, given the keys the config knows.
pub fn unknown_keys(file: &Value, known: &[String]) -> Vec<UnknownKey> {
    let mut out = Vec::new();
    let Some(map) = file.as_object() else {
        return out;
    };
    let all = known.iter().map(String::as_str).chain(ORIGINAL_ONLY);
    for key in map.keys() {
        if known.iter().any(|k| k == key) || ORIGINAL_ONLY.contains(&key.as_str()) {
            continue;
        }
        let (closest, d) = closest(key, all.clone());
        out.push(UnknownKey {
            path: key.clone(),
            security: looks_secure(key, &closest, d),
            closest,
        });
    }
    let subscribers = map.get("subscribers").and_then(Value::as_array);
    for (i, s) in subscribers.into_iter().flatten().enumerate() {
        for key in s.as_object().into_iter().flat_map(|o| o.keys()) {
            if SUBSCRIBER_KEYS.contains(&key.as_str()) {
                continue;
            }
            let (closest, _) = closest(key, SUBSCRIBER_KEYS);
            out.push(UnknownKey {
                path: format!("subscribers[{i}].{key}"),
                closest,
                security: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn misspelt_security_settings_are_flagged() {
        let known: Vec<String> = [
            "limitToSubscribersOnly",
            "subscribers",
            "DISTRIBUTOR_PORT",
            "VERBOSE",
        ]
        .map(String::from)
        .to_vec();
        let file = json!({
            "limitToSubscriberOnly": true,
            "DISTRIBUTOR_PROT": 1,
            "NUMBER_OF_WORKERS": 5,
            "subscribers": [{"publicKey": "aa", "expirationTimeStamp": 5, "subscriptionType": "FIREHOSE"}],
        });
        let u = unknown_keys(&file, &known);
        assert_eq!(u.len(), 3, "{u:?}");
        let find = |p: &str| u.iter().find(|k| k.path == p).unwrap();
        assert_eq!(
            find("limitToSubscriberOnly").closest,
            "limitToSubscribersOnly"
        );
        assert!(find("limitToSubscriberOnly").security);
        assert_eq!(find("DISTRIBUTOR_PROT").closest, "DISTRIBUTOR_PORT");
        assert!(!find("DISTRIBUTOR_PROT").security);
        let s = find("subscribers[0].expirationTimeStamp");
        assert!(s.security && s.closest == "expirationTimestamp");
    }
}
