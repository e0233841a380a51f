//! One published message as every session sends it: finished websocket frames, encoded once
//! per wire format and shared (the hub queues them, the replay buffer keeps them).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use firehose_core::codec::Encoding;
use firehose_core::since::RecordKey;

/// One published message, encoded once per wire format and shared by every session as a
/// finished websocket frame ([`crate::ws::frames`]): the JSON text frame always; the MessagePack
/// (named) frame the first time a session that asked for it needs it.
#[derive(Debug)]
pub struct Outgoing {
    /// The text frame: header, then the JSON.
    json_frame: Bytes,
    /// Where the JSON starts in `json_frame`.
    header_len: usize,
    key: Option<RecordKey>,
    msgpack: OnceLock<Option<Bytes>>,
}

/// A message as queued to sessions.
pub type Shared = Arc<Outgoing>;

impl Outgoing {
    /// Wraps the signed JSON message of the record with `key` (`None`: an entry without
    /// typed fields, which resumes pass over).
    pub fn new(json: String, key: Option<RecordKey>) -> Shared {
        let json_frame = crate::ws::frames::text(&json);
        Arc::new(Self {
            header_len: json_frame.len() - json.len(),
            json_frame,
            key,
            msgpack: OnceLock::new(),
        })
    }

    /// The record's type, id and resume position, computed when it was read.
    pub fn key(&self) -> Option<&RecordKey> {
        self.key.as_ref()
    }

    /// The JSON text (the original's wire form).
    pub fn json(&self) -> &str {
        // Built from a `String`: always UTF-8.
        std::str::from_utf8(self.json_bytes()).unwrap_or_default()
    }

    fn json_bytes(&self) -> &[u8] {
        &self.json_frame[self.header_len..]
    }

    /// The websocket frame in `encoding` (`None` if the message cannot be encoded so).
    pub fn frame(&self, encoding: Encoding) -> Option<Bytes> {
        match encoding {
            Encoding::Json => Some(self.json_frame.clone()),
            Encoding::MessagePack => self
                .msgpack
                .get_or_init(|| {
                    Encoding::MessagePack
                        .from_json(self.json_bytes())
                        .ok()
                        .map(|m| crate::ws::frames::binary(&m))
                })
                .clone(),
        }
    }
}
