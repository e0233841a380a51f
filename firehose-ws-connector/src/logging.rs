//! Logging flags as the original connector takes them: mx-chain-logger level patterns for
//! `--log-level`, and the file name `--log-save` writes under `logs/`.
//!
//! ```
//! use firehose_ws_connector::logging::filter_directives;
//!
//! assert_eq!(filter_directives("*:INFO").unwrap(), "info");
//! assert_eq!(filter_directives("*:DEBUG,process:TRACE").unwrap(), "debug,process=trace");
//! assert_eq!(filter_directives("warn").unwrap(), "warn"); // tracing filters pass through
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Turns `--log-level` into a tracing filter. mx-chain-logger patterns (`name:LEVEL`, comma
/// separated; `*` for every logger; levels NONE, ERROR, WARN, INFO, DEBUG, TRACE) become
/// directives (`*` the default level, other names a target of that name); anything else is
/// taken as a tracing filter as it is.
pub fn filter_directives(level: &str) -> Result<String, String> {
    let level = level.trim();
    if !level.contains(':') || level.contains('=') {
        return Ok(level.to_owned());
    }
    let mut out = Vec::new();
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, lvl) = part
            .split_once(':')
            .ok_or_else(|| format!("`{part}`: expected <logger>:<LEVEL>"))?;
        let lvl = match lvl.trim().to_ascii_uppercase().as_str() {
            "NONE" => "off",
            "ERROR" => "error",
            "WARN" | "WARNING" => "warn",
            "INFO" => "info",
            "DEBUG" => "debug",
            "TRACE" => "trace",
            other => return Err(format!("`{part}`: unknown level {other}")),
        };
        match name.trim() {
            "*" | "" => out.push(lvl.to_owned()),
            target => out.push(format!("{target}={lvl}")),
        }
    }
    Ok(out.join(","))
}

/// `ws-connector-firehose-YYYY-MM-DD-HH-MM-SS.log` for the UTC time `now`.
pub fn log_file_name(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "ws-connector-firehose-{y:04}-{m:02}-{d:02}-{:02}-{:02}-{:02}.log",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn patterns_and_errors() {
        assert_eq!(filter_directives("*:NONE").unwrap(), "off");
        assert_eq!(filter_directives(" *:info ").unwrap(), "info");
        assert!(filter_directives("*:LOUD").is_err());
        assert_eq!(
            filter_directives("firehose_ws_connector=debug").unwrap(),
            "firehose_ws_connector=debug"
        );
    }

    #[test]
    fn file_names_are_utc_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_378_245); // 2025-11-29 01:04:05 UTC
        assert_eq!(
            log_file_name(t),
            "ws-connector-firehose-2025-11-29-01-04-05.log"
        );
        assert_eq!(
            log_file_name(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "ws-connector-firehose-2000-02-29-00-00-00.log"
        );
    }
}
