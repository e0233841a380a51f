//! The metrics layer: the Prometheus text format, one metric at a time (shared by `/metrics`
//! and MQ mode). What is counted, and the `/metrics` route, are the server's
//! ([`crate::server::metrics`]).

/// Appends one Prometheus metric (help, type, unlabelled value) to `out`.
pub fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    ));
}
