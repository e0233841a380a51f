//! Per-connection and per-message handling: decode the envelope, print the block through the
//! [`Writer`](crate::output::Writer), and only when the writer says it is written and flushed,
//! send the ack on the same connection. Each step is counted in [`crate::metrics`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::budget::Reserved;
use crate::codec::{decode_block, topics, BlockInfo};
use crate::connector::Connector;
use crate::departure::{departed, refuse_too_big};
use crate::metrics::{BlockStamp, PeerMetrics, Refusal};
use crate::output::Held;
use crate::proto::{BlockData, FinalizedBlock, TYPE_ACK, TYPE_PAYLOAD};

/// What handling one message came to.
struct Handled {
    /// The ack to send, if any.
    ack: Option<Vec<u8>>,
    /// The envelope's topic.
    topic: String,
    /// When the block's lines were handed to the output (blocks written only).
    written_at: Option<Instant>,
}

impl Connector {
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
        let pm = self.metrics.peer(peer);
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
                        self.metrics.refused(Refusal::TooBig);
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
            let work = self.handle_message_holding(bytes, peer, &pm, held.clone());
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
            let Some(handled) = ack else {
                self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer,
                    "observer went away while its block waited for the output; not acked"
                );
                break;
            };
            if let Some(ack) = handled.ack {
                if let Err(e) = sink.send(Message::Binary(ack.into())).await {
                    tracing::warn!(peer, error = %e, "cannot send ack");
                    break;
                }
                self.stats.acks_sent.fetch_add(1, Ordering::Relaxed);
                let since_write = handled.written_at.map(|t| t.elapsed());
                pm.acked(&handled.topic, since_write);
            }
            if self.writer.is_closed() {
                break;
            }
        }
        let _ = sink.close().await;
    }

    /// Handles one envelope; returns the ack to send, if any.
    pub async fn handle_message(&self, bytes: Bytes, peer: &str) -> Option<Vec<u8>> {
        let pm = self.metrics.peer(peer);
        self.handle_message_holding(bytes, peer, &pm, None)
            .await
            .ack
    }

    /// [`Connector::handle_message`], keeping `held` until the block's lines are written.
    async fn handle_message_holding(
        &self,
        bytes: Bytes,
        peer: &str,
        pm: &PeerMetrics<'_>,
        held: Held,
    ) -> Handled {
        let none = |topic: String| Handled {
            ack: None,
            topic,
            written_at: None,
        };
        let m = self.cfg.marshaller;
        let len = bytes.len();
        let msg = match m.decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                self.metrics.refused(Refusal::Undecodable);
                tracing::error!(peer, error = %e, len, "dropped an undecodable message");
                return none(String::new());
            }
        };
        match msg.r#type {
            TYPE_PAYLOAD => {}
            TYPE_ACK => return none(msg.topic),
            other => {
                self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                self.metrics.refused(Refusal::UnknownType);
                tracing::error!(peer, r#type = other, "dropped a message of unknown type");
                return none(msg.topic);
            }
        }
        pm.received(&msg.topic);
        let (ack_wanted, counter) = (msg.with_acknowledge, msg.counter);
        let topic = msg.topic.clone();
        let mut written_at = None;
        let ok = match msg.topic.as_str() {
            topics::SAVE_BLOCK => {
                // The lines are made at once and the message let go before the output is
                // waited for: while they wait, the connection's budget holds the lines and
                // the next message, not the payload too.
                let lines = self.render_block(&msg.payload, peer);
                drop(msg);
                match lines {
                    Ok(Some((lines, info))) => {
                        written_at = Some(Instant::now());
                        self.write_block(lines, &info, &topic, peer, pm, held).await
                    }
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
        let ack = (ack_wanted && (ok || !self.cfg.blocking_ack_on_error)).then(|| m.ack(counter));
        Handled {
            ack,
            topic,
            written_at: written_at.filter(|_| ok),
        }
    }

    /// The block's lines: `Ok(None)` for a block of another shard (skipped), `Err` for a
    /// block that does not decode.
    fn render_block(&self, payload: &[u8], peer: &str) -> Result<Option<(Vec<u8>, BlockInfo)>, ()> {
        let info = match decode_block(payload) {
            Ok(i) => i,
            Err(e) => {
                self.stats.failed_blocks.fetch_add(1, Ordering::Relaxed);
                self.metrics.refused(Refusal::BadBlock);
                tracing::error!(peer, error = %e, "cannot decode block");
                return Err(());
            }
        };
        if self.cfg.shard.is_some_and(|shard| info.shard != shard) {
            return Ok(None);
        }
        let mut lines = Vec::new();
        self.format.block(&info, payload, &mut lines);
        Ok(Some((lines, info)))
    }

    /// Writes a block's lines; true once they are written and flushed.
    async fn write_block(
        &self,
        lines: Vec<u8>,
        info: &BlockInfo,
        topic: &str,
        peer: &str,
        pm: &PeerMetrics<'_>,
        held: Held,
    ) -> bool {
        let bytes = lines.len();
        match self.writer.write_holding(lines, held).await {
            Ok(()) => {
                self.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
                let block = BlockStamp {
                    shard: info.shard,
                    nonce: info.nonce,
                    timestamp: info.timestamp,
                };
                pm.written(topic, bytes, block);
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
