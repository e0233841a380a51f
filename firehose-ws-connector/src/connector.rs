//! Transport (server: many observers; client: one, redialled); per-message handling is in
//! [`crate::handling`].
//!
//! Each connection handles its messages in order: decode the envelope, print the block through
//! the [`Writer`], and only when the writer says it is written and flushed, send the ack on the
//! same connection. A bad message is logged and dropped; the connection goes on. A message over
//! the largest size is refused with close code 1009. In server mode every connection first
//! reserves what it can hold from the memory [`Budget`]; while its block waits for the output
//! it reads nothing more, and its socket is watched so that a peer that leaves is noticed at
//! once, however much it sent before leaving.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::budget::Budget;
use crate::config::{Config, Mode};
use crate::departure::watch_of;
use crate::metrics::{Metrics, Refusal};
use crate::output::{OutputFormat, Writer};

/// Counters, for logs, tests and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Blocks written to the output.
    pub blocks_written: AtomicU64,
    /// Acks sent.
    pub acks_sent: AtomicU64,
    /// Messages dropped as undecodable.
    pub bad_messages: AtomicU64,
    /// Blocks that failed (decode or write).
    pub failed_blocks: AtomicU64,
    /// Connections accepted or dialled.
    pub connections: AtomicU64,
    /// Failed accepts (each followed by a back-off).
    pub accept_errors: AtomicU64,
    /// Handshakes dropped for being too slow.
    pub handshake_timeouts: AtomicU64,
    /// Connections that went away while their block waited for the output (not acked).
    pub abandoned: AtomicU64,
    /// Messages refused for being over the largest size (closed with 1009).
    pub too_big: AtomicU64,
}

/// The connector: settings, output format and the writer handle.
pub struct Connector {
    pub(crate) cfg: Config,
    pub(crate) format: Arc<dyn OutputFormat>,
    pub(crate) writer: Writer,
    pub(crate) stats: Arc<Stats>,
    pub(crate) metrics: Arc<Metrics>,
    budget: Budget,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector printing with `format` through `writer`.
    pub fn new(cfg: Config, format: Arc<dyn OutputFormat>, writer: Writer) -> Arc<Self> {
        let budget = Budget::new(cfg.message_budget);
        Arc::new(Self {
            cfg,
            format,
            writer,
            stats: Arc::default(),
            metrics: Arc::default(),
            budget,
        })
    }

    /// The memory budget of server mode.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// What one connection reserves from the budget: its largest message and its lines.
    pub fn reservation(&self) -> usize {
        let max = self.cfg.max_message_size;
        Budget::reservation(max, self.format.line_bytes(max))
    }

    /// Observers served at once: `max_connections`, fewer if the budget cannot hold a
    /// [`Connector::reservation`] for each (at least 1).
    pub fn connection_cap(&self) -> usize {
        self.cfg
            .max_connections
            .min(self.budget.connections(self.reservation()))
            .max(1)
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The Prometheus metrics (served by `--metrics-addr`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn ws_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.cfg.max_message_size))
            .max_frame_size(Some(self.cfg.max_frame_size))
    }

    /// Runs in the configured mode until `shutdown` completes or the output closes.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        match self.cfg.mode {
            Mode::Server => {
                let addr = self.cfg.listen_addr();
                let listener = TcpListener::bind(&addr).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                tracing::info!(%addr, "listening for observer nodes on /save");
                self.serve(listener, shutdown).await
            }
            Mode::Client => {
                self.dial(shutdown).await;
                Ok(())
            }
        }
    }

    /// Server mode on an already bound listener (tests bind port 0). At most
    /// [`Config::connection_cap`] observers are served at once (the rest wait in the kernel's
    /// backlog); a handshake slower than [`Config::handshake_timeout`] is dropped; `accept`
    /// errors (e.g. out of file descriptors) back off, logged at most once a second.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut conns = JoinSet::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.cfg.max_connections.max(1)));
        let reservation = self.reservation();
        let mut last_error_log: Option<std::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            // A connection slot, then its share of the budget: connections that do not fit
            // wait in the kernel's backlog.
            let slot = tokio::select! {
                _ = &mut shutdown => break,
                _ = self.output_closed() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                s = slots.clone().acquire_owned() => s.expect("never closed"),
            };
            let reserved = tokio::select! {
                _ = &mut shutdown => break,
                _ = self.output_closed() => break,
                r = self.budget.reserve(reservation) => r,
            };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                _ = self.output_closed() => break,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    self.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if last_error_log
                        .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
                    {
                        tracing::warn!(error = %e, "accept failed; backing off");
                        last_error_log = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let watch = watch_of(&stream);
            let me = self.clone();
            conns.spawn(async move {
                let _slot = slot;
                // tungstenite's callback signature fixes the error type.
                #[allow(clippy::result_large_err)]
                let check_path =
                    |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                        if req.uri().path() == "/save" {
                            Ok(resp)
                        } else {
                            let mut r = ErrorResponse::new(Some("only /save is served".into()));
                            *r.status_mut() = http::StatusCode::NOT_FOUND;
                            Err(r)
                        }
                    };
                let handshake = tokio_tungstenite::accept_hdr_async_with_config(
                    stream,
                    check_path,
                    Some(me.ws_config()),
                );
                match tokio::time::timeout(me.cfg.handshake_timeout, handshake).await {
                    Ok(Ok(ws)) => {
                        tracing::info!(%peer, "observer connected");
                        me.stats.connections.fetch_add(1, Ordering::Relaxed);
                        let _connected = me.metrics.peer_connected();
                        me.handle_connection(ws, &peer.to_string(), Some(reserved), watch)
                            .await;
                        tracing::info!(%peer, "observer disconnected");
                    }
                    Ok(Err(e)) => {
                        me.metrics.refused(Refusal::HandshakeFailed);
                        tracing::warn!(%peer, error = %e, "websocket handshake failed");
                    }
                    Err(_) => {
                        me.metrics.refused(Refusal::HandshakeTimeout);
                        me.stats.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, "websocket handshake too slow; dropped");
                    }
                }
            });
        }
        conns.shutdown().await;
        Ok(())
    }

    /// Client mode: dial, handle, redial after `retry_duration`, until shutdown.
    pub async fn dial(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let url = self.cfg.dial_url();
        let work = async {
            loop {
                match tokio_tungstenite::connect_async_with_config(
                    url.as_str(),
                    Some(self.ws_config()),
                    true,
                )
                .await
                {
                    Ok((ws, _)) => {
                        tracing::info!(%url, "connected to observer node");
                        self.stats.connections.fetch_add(1, Ordering::Relaxed);
                        let _connected = self.metrics.peer_connected();
                        let watch = match ws.get_ref() {
                            tokio_tungstenite::MaybeTlsStream::Plain(s) => watch_of(s),
                            _ => None,
                        };
                        self.handle_connection(ws, &url, None, watch).await;
                        tracing::warn!(%url, "connection to observer node closed");
                    }
                    Err(e) => tracing::warn!(%url, error = %e, "cannot connect to observer node"),
                }
                if self.writer.is_closed() {
                    return;
                }
                tokio::time::sleep(self.cfg.retry_duration).await;
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = work => {}
        }
    }

    pub(crate) async fn output_closed(&self) {
        while !self.writer.is_closed() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
