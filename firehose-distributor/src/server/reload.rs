//! Reloading the subscriber list while running, as the original does: when the config file
//! changes (checked every [`POLL`]) or on `SIGUSR1`, the configuration is rebuilt exactly as
//! at start ([`ConfigSource`]: file, environment, arguments), its allow-list applied, and
//! sessions that are no longer allowed are closed. Between reloads, expired subscriptions are
//! swept.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::source::ConfigSource;
use crate::server::Distributor;

/// How often the config file's modification time is checked.
pub const POLL: Duration = Duration::from_secs(2);

/// Watches `source`'s file for `d`: a changed file (or `SIGUSR1`, when `on_signal`) reloads the
/// subscribers; every `poll` without a change sweeps expired subscriptions. A file that does
/// not parse is logged and the current subscribers are kept. Runs until aborted.
pub fn watch(
    d: Arc<Distributor>,
    source: ConfigSource,
    poll: Duration,
    on_signal: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = on_signal
            .then(|| signal(SignalKind::user_defined1()).ok())
            .flatten();
        let mut last = modified(source.path());
        let mut tick = tokio::time::interval(poll);
        loop {
            let forced = tokio::select! {
                Some(()) = async { usr1.as_mut()?.recv().await } => true,
                _ = tick.tick() => false,
            };
            let now = modified(source.path());
            if !forced && now == last {
                d.close_disallowed(); // expiry sweep
                continue;
            }
            last = now;
            reload(&d, &source);
        }
    })
}

/// Rebuilds the configuration from `source` and applies its allow-list to `d` now; `false`
/// (and the old list kept) if it cannot be built.
pub fn reload(d: &Distributor, source: &ConfigSource) -> bool {
    match source.load() {
        Ok(c) => {
            tracing::info!(
                subscribers = c.subscribers.len(),
                limit_to_subscribers_only = c.limit_to_subscribers_only,
                "reloaded {}",
                source.path().display()
            );
            d.update_subscribers(c.limit_to_subscribers_only, c.subscribers);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; keeping the current subscribers");
            false
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
