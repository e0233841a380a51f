//! The range every numeric setting must lie in, checked at start: a value out of range
//! refuses the start with the key, the value and the range, instead of being taken and
//! failing later (a `CLIENT_QUEUE_CAPACITY` of `u64::MAX` used to panic every session).

use crate::config::{Config, ConfigError};

/// One numeric setting: its key, its value and the inclusive range it must lie in.
struct Setting {
    key: &'static str,
    value: u64,
    min: u64,
    max: u64,
}

const HOUR_MS: u64 = 3_600_000;
const MIB: u64 = 1 << 20;

fn settings(c: &Config) -> [Setting; 13] {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    [
        Setting {
            key: "CLIENT_QUEUE_CAPACITY",
            value: n(c.client_queue_capacity),
            min: 1,
            max: 1 << 20,
        },
        Setting {
            key: "HEADER_READ_TIMEOUT_MS",
            value: c.header_read_timeout_ms,
            min: 100,
            max: HOUR_MS,
        },
        Setting {
            key: "MAX_PENDING_CONNECTIONS",
            value: n(c.max_pending_connections),
            min: 1,
            max: 1 << 20,
        },
        Setting {
            key: "MAX_PENDING_PER_ADDRESS",
            value: n(c.max_pending_per_address),
            min: 1,
            max: 1 << 20,
        },
        Setting {
            key: "MAX_LOG_LINE_BYTES",
            value: n(c.max_log_line_bytes),
            min: 1024,
            max: 1024 * MIB,
        },
        Setting {
            key: "BACKFILL_SEND_TIMEOUT_MS",
            value: c.backfill_send_timeout_ms,
            min: 1,
            max: HOUR_MS,
        },
        Setting {
            key: "BACKFILL_MIN_BYTES_PER_SEC",
            value: c.backfill_min_bytes_per_sec,
            min: 0,
            max: 1 << 40,
        },
        Setting {
            key: "RESUME_MAX_KEYS",
            value: n(c.resume_max_keys),
            min: 1,
            max: 10_000_000,
        },
        Setting {
            key: "IMPLICIT_RESUME_RATE",
            value: c.implicit_resume_rate,
            min: 0,
            max: 10_000_000,
        },
        Setting {
            key: "IMPLICIT_RESUME_MAX",
            value: c.implicit_resume_max,
            min: 1,
            max: 1 << 40,
        },
        Setting {
            key: "RESUME_ACK_MARGIN_BYTES",
            value: c.resume_ack_margin_bytes,
            min: 0,
            max: 1024 * MIB,
        },
        Setting {
            key: "REPLAY_BUFFER_BYTES",
            value: n(c.replay_buffer_bytes),
            min: 0,
            max: 64 * 1024 * MIB,
        },
        Setting {
            key: "FILE_STREAM_INTERVAL_MS",
            value: c.file_stream_interval_ms,
            min: 1,
            max: HOUR_MS,
        },
    ]
}

/// Checks every numeric setting of `c` against its range.
pub(crate) fn check(c: &Config) -> Result<(), ConfigError> {
    for s in settings(c) {
        if !(s.min..=s.max).contains(&s.value) {
            return Err(ConfigError(format!(
                "{} {}: out of range (expected {} to {})",
                s.key, s.value, s.min, s.max
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_range_and_hostile_numbers_are_not() {
        check(&Config::default()).unwrap();
        let c = Config {
            client_queue_capacity: usize::MAX,
            ..Config::default()
        };
        let e = check(&c).unwrap_err().to_string();
        assert!(
            e.contains("CLIENT_QUEUE_CAPACITY 18446744073709551615"),
            "{e}"
        );
        let c = Config {
            max_pending_per_address: 0,
            ..Config::default()
        };
        assert!(check(&c).is_err());
    }
}
