//! One benchmark result: named figures printed as a human table or as one JSON object.

use serde_json::{json, Map, Value};

/// A figure's value.
#[derive(Debug, Clone, PartialEq)]
enum Figure {
    Int(u64),
    Float(f64, usize),
    Text(String),
}

impl Figure {
    fn to_json(&self) -> Value {
        match self {
            Figure::Int(i) => json!(i),
            Figure::Float(f, _) => json!(f),
            Figure::Text(t) => json!(t),
        }
    }
}

/// One row: a machine key (JSON), a human label, the value and its unit.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    key: String,
    label: String,
    value: Figure,
    unit: String,
}

/// The figures of one scenario run, in the order they were added.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    scenario: String,
    rows: Vec<Row>,
}

impl Report {
    /// An empty report for `scenario` (`fanout`, `backfill`, `connector`).
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, label: &str, value: Figure, unit: &str) -> &mut Self {
        self.rows.push(Row {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit: unit.to_owned(),
        });
        self
    }

    /// Adds an integer figure.
    pub fn int(&mut self, key: &str, label: &str, v: u64, unit: &str) -> &mut Self {
        self.push(key, label, Figure::Int(v), unit)
    }

    /// Adds a real figure shown with `digits` decimals in the table (full precision in JSON).
    pub fn float(
        &mut self,
        key: &str,
        label: &str,
        v: f64,
        digits: usize,
        unit: &str,
    ) -> &mut Self {
        self.push(key, label, Figure::Float(v, digits), unit)
    }

    /// Adds a text figure.
    pub fn text(&mut self, key: &str, label: &str, v: impl Into<String>) -> &mut Self {
        self.push(key, label, Figure::Text(v.into()), "")
    }

    /// Adds a process's memory in MiB: `<prefix>_rss_mib` (now) and `<prefix>_peak_rss_mib`.
    pub fn memory(&mut self, prefix: &str, m: crate::sys::ProcMem) -> &mut Self {
        let mib = |kib: u64| kib as f64 / 1024.0;
        self.float(
            &format!("{prefix}_rss_mib"),
            &format!("{prefix} RSS"),
            mib(m.rss_kib),
            1,
            "MiB",
        )
        .float(
            &format!("{prefix}_peak_rss_mib"),
            &format!("{prefix} peak RSS"),
            mib(m.peak_kib),
            1,
            "MiB",
        )
    }

    /// Adds the server's CPU time over the run (`server_cpu_s`) and per item handled
    /// (`server_cpu_us_per_<item>`): work per item, steadier than items/s when the bench
    /// shares the cores with the server.
    pub fn server_cpu(&mut self, cpu_secs: f64, items: u64, item: &str) -> &mut Self {
        self.float("server_cpu_s", "server CPU", cpu_secs, 2, "s")
            .float(
                &format!("server_cpu_us_per_{item}"),
                &format!("server CPU per {item}"),
                cpu_secs * 1e6 / items.max(1) as f64,
                2,
                "µs",
            )
    }

    /// Adds `lost`, `dup` and the one-line `verdict` (`lost=0 dup=0`) that scripts look for.
    pub fn losses(&mut self, lost: u64, dup: u64) -> &mut Self {
        self.int("lost", "lost", lost, "")
            .int("dup", "dup", dup, "")
            .text("verdict", "verdict", format!("lost={lost} dup={dup}"))
    }

    /// The value of `key` as JSON, if present.
    pub fn get(&self, key: &str) -> Option<Value> {
        if key == "scenario" {
            return Some(json!(self.scenario));
        }
        self.rows
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.value.to_json())
    }

    /// One JSON object: `{"scenario": ..., key: value, ...}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("scenario".into(), json!(self.scenario));
        for r in &self.rows {
            m.insert(r.key.clone(), r.value.to_json());
        }
        Value::Object(m)
    }

    /// A two-column table for people.
    pub fn table(&self) -> String {
        let cells: Vec<(String, String)> = self
            .rows
            .iter()
            .map(|r| {
                let v = match &r.value {
                    Figure::Int(i) => i.to_string(),
                    Figure::Float(f, d) => format!("{f:.d$}", d = *d),
                    Figure::Text(t) => t.clone(),
                };
                let v = if r.unit.is_empty() {
                    v
                } else {
                    format!("{v} {}", r.unit)
                };
                (r.label.clone(), v)
            })
            .collect();
        let w = cells.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut out = format!("{}\n", self.scenario);
        for (l, v) in cells {
            out.push_str(&format!("  {l:<w$}  {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_carry_the_same_figures() {
        let mut r = Report::new("fanout");
        r.int("clients", "clients", 10, "")
            .float("p99_ms", "latency p99", 1.23456, 2, "ms")
            .text("server", "server", "ours");
        let t = r.table();
        assert!(t.contains("latency p99  1.23 ms"), "{t}");
        assert!(t.starts_with("fanout\n"));
        let j = r.to_json();
        assert_eq!(j["clients"], 10);
        assert_eq!(j["p99_ms"], 1.23456);
        assert_eq!(j["server"], "ours");
        assert_eq!(r.get("scenario"), Some(json!("fanout")));
    }
}
