//! Refused HTTP requests, counted by route and reason for `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;

use crate::metrics::{Counter, Family, Registry};

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

/// The labels of a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabel {
    route: &'static str,
    reason: &'static str,
}

/// Counters of refused requests per (route, reason), in the registry as
/// `firehose_distributor_http_refused_total{route, reason}`.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: Family<RefusalLabel, Counter>,
}

impl Refusals {
    /// Counters registered in `registry`.
    pub fn registered(registry: &Registry) -> Self {
        let r = Self::default();
        registry.register(
            "firehose_distributor_http_refused",
            "HTTP requests refused, by route and reason.",
            r.counts.clone(),
        );
        r
    }

    /// Counts one refusal.
    pub fn count(&self, route: &'static str, reason: Reason) {
        let label = RefusalLabel {
            route,
            reason: reason.label(),
        };
        self.counts.get_or_create(&label).inc();
    }
}
