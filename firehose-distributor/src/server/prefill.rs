//! At start-up, before the live readers go on: the retained data logs are read from their
//! oldest entry, and what any remembered collector still lacks is signed once and put into
//! the replay buffer ([`crate::ws::replay`]). A herd of collectors returning after a restart
//! then catches up from shared bytes, without a database back-fill or a slot each.
//!
//! The same readers then tail the logs from where the read stopped: nothing is skipped or
//! published twice. The buffer's floor is where it is complete from: per type, the first
//! retained entry, raised past every entry left out (every remembered collector has it) or
//! dropped for the byte budget; a type with an empty log takes the database's newest row.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use firehose_core::records::DataType;
use firehose_core::since::{RecordKey, Since};
use firehose_logreader::{DataLogReader, LogEvent};

use crate::server::Distributor;
use crate::ws::replay::raise;

/// Share of the replay budget the start-up read may fill (the rest is room for what the
/// archiver writes while the herd catches up).
const PREFILL_SHARE: usize = 2;

/// Entries signed per batch (on every core).
const SIGN_BATCH: usize = 1024;

/// What the start-up read of one type kept (oldest first), and its size.
#[derive(Default)]
struct Kept {
    entries: VecDeque<(RecordKey, Bytes)>,
    bytes: usize,
}

/// The point just at `k`.
fn at(k: &RecordKey) -> Since {
    let mut s = Since::default();
    s.advance_key(k);
    s
}

/// Per type, the oldest point a remembered collector has (`None`: nobody needs that type).
fn oldest_needed(d: &Distributor) -> [Option<Since>; 3] {
    let mut oldest: [Option<RecordKey>; 3] = Default::default();
    for (_, since, _) in d.positions.snapshot() {
        for t in DataType::ALL {
            let Some(k) = crate::ws::replay::key_of(&since, t) else {
                continue;
            };
            let slot = &mut oldest[t.index()];
            if slot.as_ref().is_none_or(|cur| at(cur).has(&k)) {
                *slot = Some(k);
            }
        }
    }
    oldest.map(|k| k.map(|k| at(&k)))
}

/// Reads `reader` to the end of its retained logs, keeping what a collector at `need` lacks,
/// within `budget` bytes, and raising `floor` (this type's point) to the first entry read and
/// past every entry left out or dropped. `Ok(None)`: no entry was read. `Err`: the logs could
/// not be read (the caller tails from live).
fn read_type(
    reader: &mut DataLogReader,
    need: Option<&Since>,
    budget: usize,
    floor: &mut Since,
) -> firehose_logreader::Result<Option<Kept>> {
    let mut kept: Option<Kept> = None;
    let mut events = Vec::new();
    loop {
        events.clear();
        if reader.read_available(4096, &mut events)? == 0 {
            return Ok(kept);
        }
        for ev in events.drain(..) {
            let e = match ev {
                LogEvent::Entry(e) => e,
                // After a gap the next entry starts the complete part again.
                LogEvent::Gap(_) => {
                    kept.take();
                    continue;
                }
                LogEvent::Malformed(_) | LogEvent::Untyped(_) => continue,
            };
            let kept = kept.get_or_insert_with(|| {
                raise(floor, &e.key);
                Kept::default()
            });
            if need.is_none_or(|n| n.has(&e.key)) {
                raise(floor, &e.key);
                continue;
            }
            kept.bytes += e.raw.len();
            kept.entries.push_back((e.key, e.raw));
            while kept.bytes > budget {
                let Some((k, raw)) = kept.entries.pop_front() else {
                    break;
                };
                kept.bytes -= raw.len();
                raise(floor, &k);
            }
        }
    }
}

impl Distributor {
    /// Fills the replay buffer from `readers` (one per type, starting at the oldest retained
    /// entry) and sets its floor; returns the readers where they stopped, or a live reader in
    /// place of one whose logs could not be read. Blocking: run it off the async threads.
    pub(crate) fn prefill(
        self: &Arc<Self>,
        readers: [DataLogReader; 3],
        newest_in_db: Option<Since>,
    ) -> [DataLogReader; 3] {
        // Each type its share: one type filling the buffer would push the others out.
        let (budget, max_line) = {
            let c = self.config();
            (
                c.replay_buffer_bytes / PREFILL_SHARE / DataType::ALL.len(),
                c.max_log_line_bytes,
            )
        };
        let need = oldest_needed(self);
        let started = std::time::Instant::now();
        let mut floor = Since::default();
        let mut ok = true;
        let mut total = 0usize;
        let readers = readers.map(|mut reader| {
            let t = reader.data_type();
            match read_type(&mut reader, need[t.index()].as_ref(), budget, &mut floor) {
                Ok(Some(kept)) => {
                    total += kept.entries.len();
                    self.sign_into_replay(t, kept.entries);
                    reader
                }
                // An empty log: complete from the database's newest row on.
                Ok(None) => {
                    match newest_in_db.as_ref() {
                        Some(db) => {
                            if let Some(k) = crate::ws::replay::key_of(db, t) {
                                raise(&mut floor, &k);
                            }
                        }
                        None => ok = false,
                    }
                    reader
                }
                Err(e) => {
                    tracing::warn!(data_type = %t, error = %e, "cannot read the retained data logs at start; resumes use the database");
                    ok = false;
                    DataLogReader::with_files(
                        reader.files().clone(),
                        t,
                        firehose_logreader::StartAt::Live,
                    )
                    .with_max_line_bytes(max_line)
                }
            }
        });
        if ok {
            self.hub.replay().set_floor(&floor);
        }
        tracing::info!(
            entries = total,
            bytes = self.hub.replay().bytes(),
            ms = started.elapsed().as_millis() as u64,
            ready = ok,
            "replay buffer filled from the retained data logs"
        );
        readers
    }

    /// Signs `entries` of type `t` (in batches, on every core) into the replay buffer.
    fn sign_into_replay(&self, t: DataType, entries: VecDeque<(RecordKey, Bytes)>) {
        let entries: Vec<(RecordKey, Bytes)> = entries.into();
        for chunk in entries.chunks(SIGN_BATCH) {
            let batch: Vec<(DataType, Bytes)> = chunk.iter().map(|(_, b)| (t, b.clone())).collect();
            let signed = self
                .signatures
                .signed_entries(&self.crypto, &self.keys, &batch);
            for (msg, (key, _)) in signed.into_iter().zip(chunk) {
                if let Ok(s) = String::from_utf8(msg) {
                    self.hub
                        .prefill(&crate::ws::hub::Outgoing::new(s, Some(key.clone())));
                }
            }
        }
    }
}
