//! One bench collector: reads its socket, checks order and completeness (`lost`, `dup`) from
//! each receipt's index, and measures append→receive latency from its append time.

use std::time::Instant;

use firehose_core::crypto::{Crypto, PublicKey};
use firehose_core::message::SignedRecord;
use firehose_core::records::Record;
use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What one collector saw.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) next: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) dup: u64,
    pub(super) bytes: u64,
    pub(super) latencies_us: Vec<u64>,
    pub(super) error: Option<String>,
}

impl Seen {
    fn record(&mut self, index: u64, latency_us: u64) {
        self.received += 1;
        if index < self.next {
            self.dup += 1;
            return;
        }
        self.lost += index - self.next;
        self.next = index + 1;
        self.latencies_us.push(latency_us);
    }
}

#[derive(Deserialize)]
struct Probe {
    receipt: Option<ProbeReceipt>,
}

#[derive(Deserialize)]
struct ProbeReceipt {
    cycle: u64,
    timestamp: u64,
}

/// (index, append time) of a bench receipt in `text`, if it is one.
fn probe(text: &[u8], verify: Option<&(Crypto, PublicKey)>) -> Result<Option<(u64, u64)>, String> {
    if let Some((crypto, key)) = verify {
        let s = SignedRecord::verify_json(crypto, text, key).map_err(|e| e.to_string())?;
        return Ok(match s.record {
            Record::Receipt(r) => Some((r.cycle, r.timestamp)),
            _ => None,
        });
    }
    let p: Probe = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    Ok(p.receipt.map(|r| (r.cycle, r.timestamp)))
}

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) async fn read_collector(
    mut ws: Ws,
    entries: u64,
    epoch: Instant,
    verify: Option<(Crypto, PublicKey)>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        latencies_us: Vec::with_capacity(entries as usize),
        ..Seen::default()
    };
    while seen.next < entries {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.wait_for(|s| *s) => break,
        };
        let bytes: &[u8] = match &msg {
            Some(Ok(Message::Text(t))) => t.as_bytes(),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(f))) => {
                seen.error = Some(format!("closed by the server: {f:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                seen.error = Some(e.to_string());
                break;
            }
            None => {
                seen.error = Some("connection ended".into());
                break;
            }
        };
        let len = bytes.len() as u64;
        match probe(bytes, verify.as_ref()) {
            Ok(Some((index, sent))) => {
                seen.bytes += len;
                let now = epoch.elapsed().as_micros() as u64;
                seen.record(index, now.saturating_sub(sent));
            }
            Ok(None) => {}
            Err(e) => {
                seen.error = Some(format!("bad message: {e}"));
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_core::fixtures;

    #[test]
    fn seen_counts_gaps_and_repeats() {
        let mut s = Seen::default();
        for i in [0, 1, 1, 3, 2, 4] {
            s.record(i, 10);
        }
        assert_eq!((s.received, s.lost, s.dup, s.next), (6, 1, 2, 5));
    }

    #[test]
    fn probe_reads_bench_receipts_only() {
        let line = fixtures::receipt(7, 1234, 7, 100).to_canonical_json();
        let msg = format!(r#"{{"receipt":{line},"sign":{{"owner":"x","sig":"y"}}}}"#);
        assert_eq!(probe(msg.as_bytes(), None), Ok(Some((7, 1234))));
        assert_eq!(probe(br#"{"cycle":{"counter":1}}"#, None), Ok(None));
        assert!(probe(b"not json", None).is_err());
    }
}
