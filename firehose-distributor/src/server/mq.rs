//! MQ mode as a service: the publisher (woken by the data logs, polling without them), with
//! the HTTP API and `/metrics` served on the same listener, until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::mq::publisher::{MqError, Publisher};
use crate::mq::MqConfig;
use crate::server::Distributor;

/// Why MQ mode stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// MQ mode publishes from the archiver database, and none is configured.
    #[error(
        "MQ mode publishes from the archiver database: set ARCHIVER_DB_DIR or ARCHIVER_DB_PATH"
    )]
    NoDatabase,
    /// The distributor's keys or hash key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The publisher stopped.
    #[error(transparent)]
    Publisher(#[from] MqError),
    /// The HTTP server stopped.
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
    /// A task of the service panicked.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Publishes `cfg`'s archiver database to the broker of `mq` and serves `d`'s HTTP API on
/// `listener`, until `shutdown` resolves (then both stop) or the publisher fails.
pub async fn serve(
    d: Arc<Distributor>,
    cfg: &Config,
    mq: MqConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let layout = cfg.layout().ok_or(ServiceError::NoDatabase)?;
    let db = firehose_dbstore::ArchiverDb::open(&layout).map_err(MqError::from)?;
    let publisher = Publisher::new(mq, db, cfg.crypto()?, cfg.keys()?)?;
    d.attach_mq(publisher.stats());
    // The data logs only wake the publisher up; without them it polls.
    let wake = match firehose_logreader::tail_all(
        &cfg.data_log_dir,
        |_| firehose_logreader::StartAt::Live,
        firehose_logreader::TailOptions::default(),
    )
    .await
    {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the data logs; polling the database only");
            None
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http = {
        let d = d.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { d.serve(listener, stop).await })
    };
    let mut publishing = tokio::spawn(publisher.run(wake, stopped(stop_rx)));
    let result = tokio::select! {
        () = shutdown => {
            let _ = stop_tx.send(true);
            (&mut publishing).await
        }
        r = &mut publishing => {
            let _ = stop_tx.send(true);
            r
        }
    };
    http.await??;
    result??;
    Ok(())
}
