//! A MultiversX observer node's side of the websocket outport protocol, for simulators, tests
//! and benchmarks of `firehose-ws-connector`.
//!
//! [`block_payload`] builds a realistic `OutportBlock` of a given size; [`Observer`] sends
//! blocks on a websocket the way an observer node does: counter from 1, `WithAcknowledge`,
//! wait for the ack with the same counter, resend after the ack timeout.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use firehose_ws_connector::codec::{topics, Marshaller};
use firehose_ws_connector::proto::{
    BlockData, Header, HeaderV2, MetaBlock, WsMessage, TYPE_ACK, TYPE_PAYLOAD,
};

/// An `OutportBlock` with a padding transaction pool (field 3), as a node would send it.
#[derive(Clone, PartialEq, prost::Message)]
struct SimOutportBlock {
    #[prost(uint32, tag = "1")]
    shard_id: u32,
    #[prost(message, optional, tag = "2")]
    block_data: Option<BlockData>,
    #[prost(bytes = "bytes", tag = "3")]
    transaction_pool: Bytes,
    #[prost(uint32, tag = "7")]
    number_of_shards: u32,
    #[prost(uint64, tag = "9")]
    highest_final_block_nonce: u64,
}

/// The header kinds a node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// `Header` (shard block, v1).
    Header,
    /// `HeaderV2`.
    HeaderV2,
    /// `MetaBlock`.
    MetaBlock,
}

/// The hash a simulated block `nonce` has (32 bytes).
pub fn block_hash(shard: u32, nonce: u64) -> Vec<u8> {
    let mut h = vec![0u8; 32];
    h[..4].copy_from_slice(&shard.to_be_bytes());
    h[24..].copy_from_slice(&nonce.to_be_bytes());
    h
}

/// A `SaveBlock` payload for block `nonce` of `shard`, about `size` bytes long.
pub fn block_payload(kind: HeaderKind, shard: u32, nonce: u64, size: usize) -> Bytes {
    let prev = block_hash(shard, nonce.saturating_sub(1));
    let ts = 1_700_000_000 + nonce * 6;
    let (header_type, header_bytes) = match kind {
        HeaderKind::Header | HeaderKind::HeaderV2 => {
            let h = Header {
                nonce,
                prev_hash: prev.into(),
                shard_id: shard,
                time_stamp: ts,
                round: nonce + 10,
                epoch: (nonce / 14_400) as u32,
            };
            if kind == HeaderKind::Header {
                ("Header", h.encode_to_vec())
            } else {
                ("HeaderV2", HeaderV2 { header: Some(h) }.encode_to_vec())
            }
        }
        HeaderKind::MetaBlock => (
            "MetaBlock",
            MetaBlock {
                nonce,
                epoch: (nonce / 14_400) as u32,
                round: nonce + 10,
                time_stamp: ts,
                prev_hash: prev.into(),
            }
            .encode_to_vec(),
        ),
    };
    let mut block = SimOutportBlock {
        shard_id: shard,
        block_data: Some(BlockData {
            shard_id: shard,
            header_bytes: header_bytes.into(),
            header_type: header_type.into(),
            header_hash: block_hash(shard, nonce).into(),
        }),
        transaction_pool: Bytes::new(),
        number_of_shards: 3,
        highest_final_block_nonce: nonce.saturating_sub(2),
    };
    let base = block.encoded_len();
    if size > base + 8 {
        let pad: Vec<u8> = (0..size - base - 8).map(|i| (i * 31 % 251) as u8).collect();
        block.transaction_pool = pad.into();
    }
    block.encode_to_vec().into()
}

/// What went wrong on the node side.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The websocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The connection closed.
    #[error("connection closed")]
    Closed,
    /// No ack after all resends.
    #[error("no ack for counter {0}")]
    NoAck(u64),
}

/// A node's sending side on one websocket connection.
#[derive(Debug)]
pub struct Observer<S> {
    ws: WebSocketStream<S>,
    counter: u64,
    marshaller: Marshaller,
    /// How long to wait for an ack before resending.
    pub ack_timeout: Duration,
    /// Resends before giving up.
    pub max_resends: u32,
    /// Resends done so far.
    pub resends: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Observer<S> {
    /// A node side on `ws`.
    pub fn new(ws: WebSocketStream<S>, marshaller: Marshaller) -> Self {
        Self {
            ws,
            counter: 0,
            marshaller,
            ack_timeout: Duration::from_secs(5),
            max_resends: 3,
            resends: 0,
        }
    }

    /// Sends a payload on `topic`; with `ack`, waits for the ack and resends on timeout.
    pub async fn send(&mut self, topic: &str, payload: Bytes, ack: bool) -> Result<(), SimError> {
        self.counter += 1;
        let counter = self.counter;
        let msg = self.marshaller.encode(&WsMessage {
            with_acknowledge: ack,
            counter,
            r#type: TYPE_PAYLOAD,
            payload,
            topic: topic.into(),
            version: 1,
        });
        let frame = Bytes::from(msg);
        for attempt in 0..=self.max_resends {
            if attempt > 0 {
                self.resends += 1;
            }
            self.ws.send(Message::Binary(frame.clone())).await?;
            if !ack {
                return Ok(());
            }
            if self.wait_ack(counter).await? {
                return Ok(());
            }
        }
        Err(SimError::NoAck(counter))
    }

    /// Sends a `SaveBlock`.
    pub async fn send_block(&mut self, payload: Bytes, ack: bool) -> Result<(), SimError> {
        self.send(topics::SAVE_BLOCK, payload, ack).await
    }

    /// Sends raw bytes as one binary message (for malformed-input tests).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), SimError> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// Waits for the ack of `counter` up to the ack timeout: `Ok(false)` on timeout.
    pub async fn wait_ack(&mut self, counter: u64) -> Result<bool, SimError> {
        let deadline = tokio::time::Instant::now() + self.ack_timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            let msg = match next {
                Err(_) => return Ok(false),
                Ok(None) => return Err(SimError::Closed),
                Ok(Some(m)) => m?,
            };
            let bytes = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => t.as_bytes().to_vec().into(),
                Message::Close(_) => return Err(SimError::Closed),
                _ => continue,
            };
            if let Ok(m) = self.marshaller.decode(bytes) {
                if m.r#type == TYPE_ACK && m.counter == counter {
                    return Ok(true);
                }
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
