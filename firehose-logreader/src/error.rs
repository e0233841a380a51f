//! The error type of `firehose-logreader`.

use std::path::PathBuf;

/// What can go wrong while reading or writing data logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The pointer file does not name a log file of this data type.
    #[error("{path}: pointer names `{content}`, not a `{name}-log<N>.txt` file")]
    BadPointer {
        /// The pointer file.
        path: PathBuf,
        /// What it holds.
        content: String,
        /// The data name expected.
        name: String,
    },
    /// inotify could not be set up.
    #[error("inotify on {path}: {source}")]
    Inotify {
        /// The watched directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }
}
