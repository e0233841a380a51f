//! What an operator watches: blocks received, written and acked per peer and topic, bytes
//! written, write-to-ack latency, peers connected, the newest block per shard, and frames
//! refused by reason. One [`prometheus_client`] registry holds them; `--metrics-addr`
//! serves it ([`crate::metrics_http`]).
//!
//! Counting is always on (a few atomic adds per block); serving is off by default, and
//! nothing here touches stdout.
//!
//! Invariants: the `peer` label is the observer's IP address in server mode (its port
//! changes with every reconnect) and the dialled URL in client mode; at most [`MAX_PEERS`]
//! distinct peers get their own label, later ones share `peer="other"`, so a scrape stays
//! bounded whoever connects.
//!
//! ```
//! use firehose_ws_connector::metrics::{Metrics, Refusal};
//! let m = Metrics::default();
//! m.received("10.0.0.7:40312", "SaveBlock");
//! m.refused(Refusal::TooBig);
//! let text = m.render();
//! assert!(text.contains(r#"firehose_connector_blocks_received_total{peer="10.0.0.7",topic="SaveBlock"} 1"#));
//! assert!(text.contains(r#"firehose_connector_frames_refused_total{reason="too_big"} 1"#));
//! ```

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Distinct `peer` label values; later peers are counted under `other`.
pub const MAX_PEERS: usize = 64;

/// Why a frame or connection was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A message over the largest size (closed with 1009): `too_big`.
    TooBig,
    /// An envelope that does not decode: `undecodable`.
    Undecodable,
    /// An envelope of an unknown type: `unknown_type`.
    UnknownType,
    /// A block whose header does not decode: `bad_block`.
    BadBlock,
    /// A websocket handshake that failed (wrong path, not websocket): `handshake_failed`.
    HandshakeFailed,
    /// A handshake slower than the handshake timeout: `handshake_timeout`.
    HandshakeTimeout,
}

impl Refusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooBig => "too_big",
            Refusal::Undecodable => "undecodable",
            Refusal::UnknownType => "unknown_type",
            Refusal::BadBlock => "bad_block",
            Refusal::HandshakeFailed => "handshake_failed",
            Refusal::HandshakeTimeout => "handshake_timeout",
        }
    }
}

impl EncodeLabelValue for Refusal {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerTopic {
    peer: String,
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Shard {
    shard: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: Refusal,
}

/// The connector's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: Family<PeerTopic, Counter>,
    written: Family<PeerTopic, Counter>,
    acked: Family<PeerTopic, Counter>,
    bytes_written: Counter,
    write_to_ack: Histogram,
    peers: Gauge,
    nonce: Family<Shard, Gauge>,
    timestamp: Family<Shard, Gauge>,
    refused: Family<Reason, Counter>,
    known_peers: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            received: Family::default(),
            written: Family::default(),
            acked: Family::default(),
            bytes_written: Counter::default(),
            // 100 µs to about 100 s.
            write_to_ack: Histogram::new(exponential_buckets(0.0001, 4.0, 11)),
            peers: Gauge::default(),
            nonce: Family::default(),
            timestamp: Family::default(),
            refused: Family::default(),
            known_peers: Mutex::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "firehose_connector_blocks_received",
            "Messages received from observers, by peer and topic.",
            m.received.clone(),
        );
        r.register(
            "firehose_connector_blocks_written",
            "Blocks whose FIRE lines were written and flushed, by peer and topic.",
            m.written.clone(),
        );
        r.register(
            "firehose_connector_blocks_acked",
            "Acks sent to observers, by peer and topic.",
            m.acked.clone(),
        );
        r.register(
            "firehose_connector_bytes_written",
            "Bytes of FIRE lines written to stdout.",
            m.bytes_written.clone(),
        );
        r.register(
            "firehose_connector_write_to_ack_seconds",
            "From handing a block's lines to the output to sending its ack.",
            m.write_to_ack.clone(),
        );
        r.register(
            "firehose_connector_peers",
            "Observers connected now.",
            m.peers.clone(),
        );
        r.register(
            "firehose_connector_last_block_nonce",
            "Nonce of the newest block written, by shard.",
            m.nonce.clone(),
        );
        r.register("firehose_connector_last_block_timestamp_seconds", "Header timestamp (Unix seconds) of the newest block written, by shard: lag is time() minus this.", m.timestamp.clone());
        r.register(
            "firehose_connector_frames_refused",
            "Frames and connections refused, by reason.",
            m.refused.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The label for `peer`: the IP of `ip:port`, a URL as it is; `other` past [`MAX_PEERS`].
    fn peer_label(&self, peer: &str) -> String {
        let label = match peer.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr.ip().to_string(),
            Err(_) => peer.to_owned(),
        };
        let mut known = self.known_peers.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(&label) || known.len() < MAX_PEERS && known.insert(label.clone()) {
            label
        } else {
            "other".into()
        }
    }

    /// The counters of one connection: its label is worked out once, and the handles of the
    /// topic it sends (almost always `SaveBlock`) and of its shard are kept, so a block costs
    /// a few atomic adds, not label lookups.
    pub fn peer(&self, peer: &str) -> PeerMetrics<'_> {
        PeerMetrics {
            metrics: self,
            peer: self.peer_label(peer),
            topic: Mutex::default(),
            shard: Mutex::default(),
        }
    }

    /// A message of `topic` arrived from `peer` (see [`Metrics::peer`] for a connection's).
    pub fn received(&self, peer: &str, topic: &str) {
        self.peer(peer).received(topic);
    }

    /// A block's `bytes` of lines were written for `peer`; `nonce`, `timestamp` (s) and
    /// `shard` are the block's.
    pub fn written(&self, peer: &str, topic: &str, bytes: usize, block: BlockStamp) {
        self.peer(peer).written(topic, bytes, block);
    }

    /// An ack for a message of `topic` went to `peer`; `since_write` is how long after its
    /// lines were handed to the output (none for messages without a block).
    pub fn acked(&self, peer: &str, topic: &str, since_write: Option<Duration>) {
        self.peer(peer).acked(topic, since_write);
    }

    /// Something was refused.
    pub fn refused(&self, why: Refusal) {
        self.refused.get_or_create(&Reason { reason: why }).inc();
    }

    /// An observer connected; the guard counts it out when dropped.
    pub fn peer_connected(&self) -> PeerGuard<'_> {
        self.peers.inc();
        PeerGuard(&self.peers)
    }

    /// The OpenMetrics text of every metric (what `/metrics` answers).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts a connected observer until dropped.
#[derive(Debug)]
pub struct PeerGuard<'a>(&'a Gauge);

impl Drop for PeerGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Where a written block stands: its shard, nonce and header time (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct BlockStamp {
    /// Shard (`u32::MAX` for the metachain).
    pub shard: u32,
    /// Nonce.
    pub nonce: u64,
    /// Header timestamp, seconds.
    pub timestamp: u64,
}

/// One connection's view of the [`Metrics`] ([`Metrics::peer`]).
#[derive(Debug)]
pub struct PeerMetrics<'a> {
    metrics: &'a Metrics,
    peer: String,
    /// The last topic's (received, written, acked) counters.
    topic: Mutex<Option<(String, [Counter; 3])>>,
    /// The last shard's (nonce, timestamp) gauges.
    shard: Mutex<Option<(u32, [Gauge; 2])>>,
}

impl PeerMetrics<'_> {
    /// The (received, written, acked) counters of `topic`, looked up when the topic changes.
    fn counters(&self, topic: &str) -> [Counter; 3] {
        let mut cached = self.topic.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((t, c)) if t == topic => c.clone(),
            _ => {
                let m = self.metrics;
                let l = PeerTopic {
                    peer: self.peer.clone(),
                    topic: topic.to_owned(),
                };
                let c = [
                    m.received.get_or_create(&l).clone(),
                    m.written.get_or_create(&l).clone(),
                    m.acked.get_or_create(&l).clone(),
                ];
                *cached = Some((topic.to_owned(), c.clone()));
                c
            }
        }
    }

    /// A message of `topic` arrived.
    pub fn received(&self, topic: &str) {
        self.counters(topic)[0].inc();
    }

    /// A block's `bytes` of lines were written.
    pub fn written(&self, topic: &str, bytes: usize, block: BlockStamp) {
        self.counters(topic)[1].inc();
        self.metrics.bytes_written.inc_by(bytes as u64);
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut cached = self.shard.lock().unwrap_or_else(|e| e.into_inner());
        let gauges = match &*cached {
            Some((s, g)) if *s == block.shard => g.clone(),
            _ => {
                let l = Shard {
                    shard: block.shard.to_string(),
                };
                let g = [
                    self.metrics.nonce.get_or_create(&l).clone(),
                    self.metrics.timestamp.get_or_create(&l).clone(),
                ];
                *cached = Some((block.shard, g.clone()));
                g
            }
        };
        gauges[0].set(as_i64(block.nonce));
        gauges[1].set(as_i64(block.timestamp));
    }

    /// An ack for a message of `topic` went out, `since_write` after its lines were handed to
    /// the output.
    pub fn acked(&self, topic: &str, since_write: Option<Duration>) {
        self.counters(topic)[2].inc();
        if let Some(d) = since_write {
            self.metrics.write_to_ack.observe(d.as_secs_f64());
        }
    }
}
