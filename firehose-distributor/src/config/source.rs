//! Where the configuration comes from, kept so that a reload rebuilds it exactly as start-up
//! did: the file, then environment variables named like its keys, then `--KEY value`
//! arguments (the original re-applies all three on `SIGUSR1`).
//!
//! ```
//! use firehose_distributor::config::source::ConfigSource;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("distributor-config.json");
//! std::fs::write(&path, r#"{"limitToSubscribersOnly": false}"#).unwrap();
//! let source = ConfigSource::new(&path)
//!     .with_overrides(vec![("limitToSubscribersOnly".into(), "true".into())]);
//! // However often it is loaded, the argument beats the file.
//! assert!(source.load().unwrap().limit_to_subscribers_only);
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ConfigError};

/// Reads environment variables (a snapshot in tests, the process environment otherwise).
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The file, environment and arguments a [`Config`] is built from.
#[derive(Clone)]
pub struct ConfigSource {
    path: PathBuf,
    optional: bool,
    allow_unknown_keys: bool,
    env: EnvReader,
    overrides: Vec<(String, String)>,
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .field("optional", &self.optional)
            .field("allow_unknown_keys", &self.allow_unknown_keys)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// The file at `path` (it must exist), the process environment, no arguments.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            optional: false,
            allow_unknown_keys: false,
            env: Arc::new(|k| std::env::var(k).ok()),
            overrides: Vec::new(),
        }
    }

    /// A missing file means the defaults (the binary's default path).
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Misspelt security settings in the file are only logged.
    pub fn allow_unknown_keys(mut self, allow: bool) -> Self {
        self.allow_unknown_keys = allow;
        self
    }

    /// Reads environment variables with `env` instead of the process environment.
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// The `--KEY value` arguments, applied last.
    pub fn with_overrides(mut self, overrides: Vec<(String, String)>) -> Self {
        self.overrides = overrides;
        self
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Builds the configuration: file (or defaults), environment, arguments.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut cfg = if self.optional && !self.path.exists() {
            Config::default()
        } else {
            Config::from_file_with(&self.path, self.allow_unknown_keys)?
        };
        cfg.apply_env(|k| (self.env)(k))?;
        cfg.apply_overrides(&self.overrides, "command line")?;
        Ok(cfg)
    }
}
