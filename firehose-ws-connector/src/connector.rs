//! Transport (server: many observers; client: one, redialled) and per-message handling.
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

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{http, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::budget::{Budget, Reserved};
use crate::codec::{decode_block, topics};
use crate::config::{Config, Mode};
use crate::departure::{departed, refuse_too_big, watch_of};
use crate::output::{Held, OutputFormat, Writer};
use crate::proto::{BlockData, FinalizedBlock, TYPE_ACK, TYPE_PAYLOAD};

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
    cfg: Config,
    format: Arc<dyn OutputFormat>,
    writer: Writer,
    stats: Arc<Stats>,
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
                        me.handle_connection(ws, &peer.to_string(), Some(reserved), watch)
                            .await;
                        tracing::info!(%peer, "observer disconnected");
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "websocket handshake failed"),
                    Err(_) => {
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

    async fn output_closed(&self) {
        while !self.writer.is_closed() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Reads messages until the peer goes away; answers with acks. While a block waits for
    /// the output one more message is read, then `watch` (a second handle on the same socket)
    /// tells when the peer has gone: its block is not acked, and `reserved` is given back
    /// once the block's lines, handed to the output whole, are written.
    pub async fn handle_connection<S>(
        &self,
        ws: WebSocketStream<S>,
        peer: &str,
        reserved: Option<Reserved>,
        watch: Option<TcpStream>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let held: Held = reserved.map(|r| r as Arc<dyn std::any::Any + Send + Sync>);
        let (mut sink, mut stream) = ws.split();
        // A message that arrived while the previous one waited for the output.
        let mut next: Option<Message> = None;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match stream.next().await {
                    Some(Ok(m)) => m,
                    Some(Err(WsError::Capacity(e))) => {
                        self.stats.too_big.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, error = %e, "message over the largest size; closing with 1009");
                        refuse_too_big(sink, stream, self.cfg.max_message_size).await;
                        return;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(peer, error = %e, "websocket read failed");
                        break;
                    }
                    None => break,
                },
            };
            let bytes = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::from(t),
                Message::Close(_) => break,
                _ => continue, // ping/pong handled by tungstenite
            };
            let work = self.handle_message_holding(bytes, peer, held.clone());
            tokio::pin!(work);
            // While the block waits for the output, the next message is read (its payload
            // was let go once its lines were made, so the reservation covers it), and after
            // it the socket is watched: a peer that leaves is noticed at once.
            let ack = loop {
                tokio::select! {
                    biased;
                    ack = &mut work => break Some(ack),
                    ev = stream.next(), if next.is_none() => match ev {
                        Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => next = Some(m),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                        Some(Ok(_)) => {}
                    },
                    () = departed(watch.as_ref()), if next.is_some() => break None,
                }
            };
            let Some(ack) = ack else {
                self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer,
                    "observer went away while its block waited for the output; not acked"
                );
                break;
            };
            if let Some(ack) = ack {
                if let Err(e) = sink.send(Message::Binary(ack.into())).await {
                    tracing::warn!(peer, error = %e, "cannot send ack");
                    break;
                }
                self.stats.acks_sent.fetch_add(1, Ordering::Relaxed);
            }
            if self.writer.is_closed() {
                break;
            }
        }
        let _ = sink.close().await;
    }

    /// Handles one envelope; returns the ack to send, if any.
    pub async fn handle_message(&self, bytes: Bytes, peer: &str) -> Option<Vec<u8>> {
        self.handle_message_holding(bytes, peer, None).await
    }

    /// [`Connector::handle_message`], keeping `held` until the block's lines are written.
    async fn handle_message_holding(
        &self,
        bytes: Bytes,
        peer: &str,
        held: Held,
    ) -> Option<Vec<u8>> {
        let m = self.cfg.marshaller;
        let len = bytes.len();
        let msg = match m.decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                tracing::error!(peer, error = %e, len, "dropped an undecodable message");
                return None;
            }
        };
        match msg.r#type {
            TYPE_PAYLOAD => {}
            TYPE_ACK => return None,
            other => {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                tracing::error!(peer, r#type = other, "dropped a message of unknown type");
                return None;
            }
        }
        let (ack_wanted, counter) = (msg.with_acknowledge, msg.counter);
        let ok = match msg.topic.as_str() {
            topics::SAVE_BLOCK => {
                // The lines are made at once and the message let go before the output is
                // waited for: while they wait, the connection's budget holds the lines and
                // the next message, not the payload too.
                let lines = self.render_block(&msg.payload, peer);
                drop(msg);
                match lines {
                    Ok(Some(lines)) => self.write_block(lines, peer, held).await,
                    Ok(None) => true,
                    Err(()) => false,
                }
            }
            topics::REVERT_INDEXED_BLOCK => {
                match BlockData::decode(msg.payload.clone()) {
                    Ok(b) => {
                        tracing::warn!(peer, header_type = %b.header_type, hash = %hex::encode(&b.header_hash), "observer reverted a block (reorg)")
                    }
                    Err(e) => {
                        tracing::warn!(peer, error = %e, "observer reverted a block (undecodable payload)")
                    }
                }
                true
            }
            topics::FINALIZED_BLOCK => {
                if let Ok(f) = FinalizedBlock::decode(msg.payload.clone()) {
                    tracing::info!(peer, shard = f.shard_id, hash = %hex::encode(&f.header_hash), "block finalized");
                }
                true
            }
            other => {
                tracing::debug!(peer, topic = other, "topic not handled; acked");
                true
            }
        };
        // Counter and Type only (`10 01 18 01` for counter 1), as the original's acks.
        (ack_wanted && (ok || !self.cfg.blocking_ack_on_error)).then(|| m.ack(counter))
    }

    /// The block's lines: `Ok(None)` for a block of another shard (skipped), `Err` for a
    /// block that does not decode.
    fn render_block(&self, payload: &[u8], peer: &str) -> Result<Option<Vec<u8>>, ()> {
        let info = match decode_block(payload) {
            Ok(i) => i,
            Err(e) => {
                self.stats.failed_blocks.fetch_add(1, Ordering::Relaxed);
                tracing::error!(peer, error = %e, "cannot decode block");
                return Err(());
            }
        };
        if self.cfg.shard.is_some_and(|shard| info.shard != shard) {
            return Ok(None);
        }
        let mut lines = Vec::new();
        self.format.block(&info, payload, &mut lines);
        Ok(Some(lines))
    }

    /// Writes a block's lines; true once they are written and flushed.
    async fn write_block(&self, lines: Vec<u8>, peer: &str, held: Held) -> bool {
        match self.writer.write_holding(lines, held).await {
            Ok(()) => {
                self.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.stats.failed_blocks.fetch_add(1, Ordering::Relaxed);
                tracing::error!(peer, error = %e, "cannot write block");
                false
            }
        }
    }
}
