//! The Prometheus text format, one metric at a time (shared by `/metrics` and MQ mode).

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
