//! The state file of [`crate::backfill::positions`]: every remembered resume point, written every
//! interval when something changed and once more at shutdown, atomically
//! ([`crate::atomic_file`]). A crash costs at most the last interval: the points read back
//! are older, so resumes repeat entries, never skip them.
//!
//! A file that cannot be read (torn by hand, another program's, another version) is reported,
//! moved aside as `<name>.corrupt-<ms>`, and the distributor starts with no points: the
//! collectors it forgot get the original's live-only behaviour once, then points again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use firehose_core::crypto::PublicKey;
use firehose_core::since::Since;
use serde::{Deserialize, Serialize};

use crate::backfill::positions::Positions;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    version: u32,
    updated_at_ms: u64,
    positions: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: String,
    since: Since,
    /// The key was delivered something (strangers are forgotten first); files written
    /// before this field count every key as delivered.
    #[serde(default = "delivered_by_default")]
    delivered: bool,
}

fn delivered_by_default() -> bool {
    true
}

/// Reads `path` into `into`; returns how many points it held. A missing file is none; a
/// damaged one is reported, moved aside, and is none too.
pub fn load(path: &Path, into: &Positions) -> usize {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read the resume state; starting without positions");
            return 0;
        }
    };
    match parse(&text) {
        Ok(entries) => {
            let n = entries.len();
            for (k, s, delivered) in entries {
                into.set(k, s, delivered);
            }
            into.take_dirty();
            n
        }
        Err(reason) => {
            let aside = PathBuf::from(format!(
                "{}.corrupt-{}",
                path.display(),
                crate::auth::now_ms()
            ));
            let moved = std::fs::rename(path, &aside).is_ok();
            tracing::error!(
                file = %path.display(),
                %reason,
                moved_to = %aside.display(),
                moved,
                "resume state unreadable; starting without positions (collectors it named get live-only once)"
            );
            0
        }
    }
}

fn parse(text: &[u8]) -> Result<Vec<(PublicKey, Since, bool)>, String> {
    let f: File = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    if f.version != 1 {
        return Err(format!(
            "version {} (this build reads version 1)",
            f.version
        ));
    }
    f.positions
        .into_iter()
        .map(|e| {
            PublicKey::from_hex(&e.key)
                .map(|k| (k, e.since, e.delivered))
                .map_err(|err| format!("key {}: {err}", e.key))
        })
        .collect()
}

/// Writes every point of `p` to `path`, atomically and durably.
pub fn save(path: &Path, p: &Positions) -> std::io::Result<()> {
    let file = File {
        version: 1,
        updated_at_ms: crate::auth::now_ms(),
        positions: p
            .snapshot()
            .into_iter()
            .map(|(k, since, delivered)| Entry {
                key: k.to_hex(),
                since,
                delivered,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&file).expect("positions serialise");
    crate::atomic_file::replace(path, &body)
}

/// Saves `p` to `path` every `every` when it changed (off the async threads), until aborted.
pub fn spawn_saver(
    p: Arc<Positions>,
    path: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            save_if_changed(&p, &path).await;
        }
    })
}

/// Saves `p` to `path` if it changed since the last save.
pub async fn save_if_changed(p: &Arc<Positions>, path: &Path) {
    if !p.take_dirty() {
        return;
    }
    let (p2, path2) = (p.clone(), path.to_owned());
    let r = tokio::task::spawn_blocking(move || save(&path2, &p2)).await;
    if !matches!(r, Ok(Ok(()))) {
        p.mark_dirty();
        tracing::warn!(file = %path.display(), "cannot save the resume state; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_damaged_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume.json");
        let p = Positions::new(10);
        let since = Since {
            cycle: Some(7),
            ..Since::default()
        };
        p.set(PublicKey([1; 32]), since.clone(), true);
        save(&path, &p).unwrap();
        let back = Positions::new(10);
        assert_eq!(load(&path, &back), 1);
        assert_eq!(back.get(&PublicKey([1; 32])), Some(since));
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..20]).unwrap();
        let torn = Positions::new(10);
        assert_eq!(load(&path, &torn), 0);
        assert!(!path.exists(), "moved aside");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
