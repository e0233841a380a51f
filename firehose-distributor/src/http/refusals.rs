//! Refused HTTP requests, counted by route and reason for `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why a request was refused (a small fixed set: metric labels stay few).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Malformed body, wrong field type, out-of-range number (400).
    BadRequest,
    /// No selector the route knows (400, unsigned, as in the original).
    NoSelector,
    /// Bad signature, sender is not the signer, or not on the allow-list (401).
    Signature,
    /// The archiver database is missing or a query failed (503).
    Unavailable,
    /// Over `RATE_LIMIT` (429).
    RateLimited,
    /// The query task failed (500).
    Internal,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::NoSelector => "no_selector",
            Reason::Signature => "signature",
            Reason::Unavailable => "unavailable",
            Reason::RateLimited => "rate_limited",
            Reason::Internal => "internal",
        }
    }
}

/// Counters of refused requests per (route, reason).
#[derive(Debug, Default)]
pub struct Refusals {
    counts: Mutex<BTreeMap<(&'static str, Reason), u64>>,
}

impl Refusals {
    /// Counts one refusal.
    pub fn count(&self, route: &'static str, reason: Reason) {
        *self
            .counts
            .lock()
            .expect("refusals lock")
            .entry((route, reason))
            .or_default() += 1;
    }

    /// The Prometheus family `firehose_distributor_http_refused_total{route, reason}`.
    pub fn render(&self, out: &mut String) {
        let name = "firehose_distributor_http_refused_total";
        out.push_str(&format!(
            "# HELP {name} HTTP requests refused, by route and reason.\n# TYPE {name} counter\n"
        ));
        for ((route, reason), n) in self.counts.lock().expect("refusals lock").iter() {
            out.push_str(&format!(
                "{name}{{route=\"{route}\",reason=\"{}\"}} {n}\n",
                reason.label()
            ));
        }
    }
}
