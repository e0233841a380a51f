//! The metrics layer: one [`Registry`] (prometheus-client's, behind a lock so that MQ mode can
//! add its metrics when it starts) exposes every metric of the process in the standard
//! OpenMetrics text. The concerns that count hold [`Counter`] handles; the registry holds a
//! clone of each (a clone shares the value), so counting is one atomic add and nothing is
//! copied at a scrape. Gauges that describe the present (sessions, positions, lag, files) are
//! set by the server just before it renders ([`crate::server::metrics`]).
//!
//! ```
//! use firehose_distributor::metrics::{Counter, Registry};
//! let (registry, c) = (Registry::default(), Counter::default());
//! registry.register("firehose_example_things", "Things.", c.clone());
//! c.inc_by(3);
//! assert!(registry.render().contains("firehose_example_things_total 3\n"));
//! ```

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;

/// A monotonic counter (a clone shares the same value).
pub type Counter = prometheus_client::metrics::counter::Counter;
/// An integer gauge.
pub type Gauge = prometheus_client::metrics::gauge::Gauge;
/// A floating-point gauge (timestamps in seconds).
pub type GaugeF64 = prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>;
/// A family of metrics by label set.
pub type Family<L, M> = prometheus_client::metrics::family::Family<L, M>;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label of per-data-type metrics (`data_type="receipt"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DataTypeLabel {
    /// The data log's name: `cycle`, `originalTx` or `receipt`.
    pub data_type: &'static str,
}

/// Every metric of the process, in one registry.
#[derive(Debug, Default)]
pub struct Registry(Mutex<prometheus_client::registry::Registry>);

impl Registry {
    /// Registers `metric` under `name` (a counter's exposition adds `_total`).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// Every metric as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
