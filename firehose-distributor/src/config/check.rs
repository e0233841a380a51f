//! `firehose-distributor check`: what an operator wants to know before a (re)start, without
//! serving. Each finding is `ok`, `WARN` (it starts, but probably not as meant) or `FAIL` (it
//! would not start, or would serve nothing); the report passes when nothing failed.
//!
//! It reads only: the databases are opened read-only, the data-log directory is listed, and
//! nothing is bound or written, so it can run beside the distributor it checks.

use std::fmt;
use std::path::Path;

use firehose_core::crypto::PublicKey;
use firehose_core::records::DataType;
use firehose_dbstore::history::Table;
use firehose_dbstore::{ArchiverDb, Layout, Store};
use firehose_logreader::files::LogFiles;

use crate::config::{Config, FIREHOSE};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Starts, but probably not as meant.
    Warn,
    /// Would not start, or would serve nothing.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked (`keys`, `database`, `data logs`, `allow-list`, ...).
    pub topic: &'static str,
    /// What was found.
    pub detail: String,
}

/// Everything found, in the order checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, level: Level, topic: &'static str, detail: impl Into<String>) {
        self.findings.push(Finding {
            level,
            topic,
            detail: detail.into(),
        });
    }

    /// A configuration that cannot even be built (bad JSON, bad override).
    pub fn unloadable(error: impl fmt::Display) -> Report {
        let mut r = Report::default();
        r.push(Level::Fail, "config", error.to_string());
        r
    }

    /// Nothing failed.
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Fail)
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.findings {
            let level = match x.level {
                Level::Ok => "ok",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            writeln!(f, "  {level:<5} {:<11} {}", x.topic, x.detail)?;
        }
        let (fails, warns) = (self.count(Level::Fail), self.count(Level::Warn));
        match fails {
            0 => writeln!(f, "passed ({warns} warning(s))"),
            n => writeln!(f, "FAILED: {n} problem(s), {warns} warning(s)"),
        }
    }
}

/// Checks `cfg` (as the distributor would run it; `mq`: MQ mode) at `now_ms`.
pub fn check(cfg: &Config, mq: bool, now_ms: u64) -> Report {
    let mut r = Report::default();
    settings(cfg, &mut r);
    keys(cfg, &mut r);
    database(cfg, mq, &mut r);
    data_logs(cfg, mq, &mut r);
    allow_list(cfg, now_ms, &mut r);
    r
}

fn settings(cfg: &Config, r: &mut Report) {
    match crate::config::ranges::check(cfg) {
        Ok(()) => r.push(Level::Ok, "settings", "every numeric setting is in range"),
        Err(e) => r.push(Level::Fail, "settings", e.0),
    }
    if let Some(mode) = &cfg.distributor_mode {
        if !["MQ", "WS"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mode.trim()))
        {
            r.push(
                Level::Fail,
                "settings",
                format!("distributorMode `{mode}`: expected WS or MQ"),
            );
        }
    }
}

fn keys(cfg: &Config, r: &mut Report) {
    if let Err(e) = cfg.crypto() {
        r.push(Level::Fail, "keys", e.0);
    }
    match cfg.keys() {
        Ok(kp) if cfg.uses_dev_keys() => r.push(
            Level::Warn,
            "keys",
            format!(
                "{} is the original's published dev key: anyone can sign as this distributor \
                 (make a pair with `firehose keygen`)",
                kp.public_key()
            ),
        ),
        Ok(kp) => r.push(
            Level::Ok,
            "keys",
            format!("public key {} matches the secret key", kp.public_key()),
        ),
        Err(e) => r.push(Level::Fail, "keys", e.0),
    }
}

fn database(cfg: &Config, mq: bool, r: &mut Report) {
    let Some(layout) = cfg.layout() else {
        let (level, why) = if mq {
            (Level::Fail, "MQ mode publishes from it")
        } else {
            (Level::Warn, "history requests and resumes will be refused")
        };
        r.push(
            level,
            "database",
            format!("no ARCHIVER_DB_DIR or ARCHIVER_DB_PATH: {why}"),
        );
        return;
    };
    let where_ = match &layout {
        Layout::SingleFile(p) => p.display().to_string(),
        Layout::Directory(d) | Layout::Named(d, _) => d.display().to_string(),
    };
    let db = match ArchiverDb::open(&layout) {
        Ok(db) => db,
        Err(e) => {
            r.push(Level::Fail, "database", format!("{where_}: {e}"));
            return;
        }
    };
    let mut counts = Vec::new();
    for (table, name) in [
        (Table::Cycles, "cycles"),
        (Table::Receipts, "receipts"),
        (Table::OriginalTxs, "originalTxs"),
        (Table::Accounts, "accounts"),
        (Table::Transactions, "transactions"),
    ] {
        let optional = matches!(table, Table::Accounts | Table::Transactions);
        if optional && !layout.path_of(table.store()).exists() {
            counts.push(format!("{name} -"));
            continue;
        }
        match db.history_count(table, None) {
            Ok(n) => counts.push(format!("{name} {n}")),
            Err(e) => r.push(Level::Fail, "database", format!("{where_}: {name}: {e}")),
        }
    }
    r.push(
        Level::Ok,
        "database",
        format!("{where_} opens read-only: {}", counts.join(", ")),
    );
    if !matches!(layout, Layout::SingleFile(_)) && !layout.path_of(Store::Accounts).exists() {
        r.push(
            Level::Warn,
            "database",
            "no accounts/transactions stores: /account and /transaction answer empty",
        );
    }
}

fn data_logs(cfg: &Config, mq: bool, r: &mut Report) {
    let dir = &cfg.data_log_dir;
    // MQ mode publishes from the database: its logs are optional.
    let missing = if mq { Level::Warn } else { Level::Fail };
    if let Err(e) = std::fs::read_dir(dir) {
        r.push(
            missing,
            "data logs",
            format!("DATA_LOG_DIR {}: {e}", dir.display()),
        );
        return;
    }
    let mut active = Vec::new();
    for t in DataType::ALL {
        let files = LogFiles::new(dir, t.log_name());
        match files.read_pointer() {
            Ok(Some(n)) => active.push(files.file_name(n)),
            Ok(None) => {
                let hint = subdirectory_hint(dir, t.log_name());
                r.push(
                    missing,
                    "data logs",
                    format!(
                        "{}: no {} (is DATA_LOG_DIR the archiver's data-logs/<ip>_<port>?{hint})",
                        dir.display(),
                        files
                            .pointer_path()
                            .file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    ),
                );
            }
            Err(e) => r.push(Level::Fail, "data logs", e.to_string()),
        }
    }
    if active.len() == DataType::ALL.len() {
        r.push(
            Level::Ok,
            "data logs",
            format!("{} readable, writing {}", dir.display(), active.join(", ")),
        );
    }
}

/// ` Found one in <sub>`: when the pointer sits one level down (the `data-logs` parent given).
fn subdirectory_hint(dir: &Path, name: &str) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| LogFiles::new(p, name).pointer_path().is_file())
        .map_or_else(String::new, |p| format!("; found one in {}", p.display()))
}

fn allow_list(cfg: &Config, now_ms: u64, r: &mut Report) {
    let subs = &cfg.subscribers;
    for s in subs {
        if let Err(e) = PublicKey::from_hex(&s.public_key) {
            r.push(
                Level::Fail,
                "allow-list",
                format!("subscriber `{}`: {e}", s.public_key),
            );
        }
    }
    let expired = subs.iter().filter(|s| s.expired(now_ms)).count();
    let week = now_ms.saturating_add(7 * 86_400_000);
    let soon = subs
        .iter()
        .filter(|s| !s.expired(now_ms) && s.expired(week))
        .count();
    let other_types = subs
        .iter()
        .filter(|s| s.subscription_type != FIREHOSE)
        .count();
    let mut keys: Vec<String> = subs
        .iter()
        .map(|s| s.public_key.to_ascii_lowercase())
        .collect();
    keys.sort();
    keys.dedup();
    let duplicates = subs.len() - keys.len();
    let active = subs
        .iter()
        .filter(|s| {
            !s.expired(now_ms)
                && s.subscription_type == FIREHOSE
                && PublicKey::from_hex(&s.public_key).is_ok()
        })
        .count();
    let summary = format!(
        "{} subscriber(s): {expired} expired, {soon} expiring within 7 days, {other_types} not FIREHOSE, {duplicates} listed twice",
        subs.len()
    );
    if cfg.limit_to_subscribers_only {
        let level = if active == 0 { Level::Warn } else { Level::Ok };
        r.push(
            level,
            "allow-list",
            format!("on, {active} may subscribe; {summary}"),
        );
    } else {
        r.push(
            Level::Warn,
            "allow-list",
            format!("off (limitToSubscribersOnly=false): any key may subscribe; {summary}"),
        );
    }
    if soon > 0 {
        r.push(
            Level::Warn,
            "allow-list",
            format!("{soon} subscriber(s) expire within 7 days"),
        );
    }
}
