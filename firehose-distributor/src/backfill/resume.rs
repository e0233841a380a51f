//! Resume without gaps (beyond the original): a collector may add `since` to `collectorInfo`,
//! naming the last record it has of each type:
//!
//! ```json
//! {"since": {"cycle": 41, "originalTx": {"cycle": 41, "timestamp": 1700000000123, "id": "ab…"},
//!            "receipt": {"cycle": 41, "timestamp": 1700000000456, "id": "cd…"}}}
//! ```
//!
//! The session is registered with the hub first (live entries queue up), then every database
//! row after `since` is sent, then the entries of the retained data logs after `since` that
//! SQLite did not have yet (see [`crate::backfill::logindex`]), then the queued live entries that the
//! back-fill did not cover (matched by type and record id): no gap and no duplicate at the
//! handover. Collectors
//! that send no `since` get the original behaviour (live only).

use std::collections::HashSet;

use bytes::Bytes;

use crate::backfill::signatures::SignatureCache;
use crate::ws::hub::{Outgoing, Shared};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::{Cycle, DataType, OriginalTxData, Receipt, Record};
use firehose_core::since::{PageKey, RecordKey, Since};
use firehose_dbstore::{ArchiverDb, KeyedRow};
use firehose_logreader::files::LogFiles;
use firehose_logreader::{DataLogReader, LogEvent, StartAt};
use tokio::sync::mpsc;

const PAGE: usize = 500;

/// Where the back-fill scans the retained data logs (after SQLite): the directory, ring size,
/// and each type's start (see [`crate::backfill::logindex`]).
#[derive(Debug, Clone)]
pub struct LogScan {
    /// The data-log directory.
    pub dir: std::path::PathBuf,
    /// Ring size of the log files.
    pub max_log_files: u32,
    /// Start position per data type, in [`DataType::ALL`] order.
    pub start: [StartAt; 3],
}

/// What a back-fill sent.
#[derive(Debug, Default)]
pub struct Backfilled {
    /// Rows sent from SQLite.
    pub from_db: u64,
    /// Entries sent from the data logs (appended but not yet in SQLite).
    pub from_logs: u64,
    /// (type, id) of everything sent, to skip them in the live stream.
    pub ids: SentIds,
    /// The resume point after everything sent.
    pub reached: Since,
    /// The back-fill stopped at its limit of entries ([`backfill_limited`]): the session goes
    /// live and leaves a gap after [`Backfilled::reached`].
    pub cut: bool,
    /// The back-fill stopped because rows committed after its database pass had already
    /// rotated out of the data logs (the ring lapped it): sending the rest would break the
    /// order, so the session should be closed and resumed again (SQLite has them by then).
    pub lapped: Option<DataType>,
}

/// Messages signed and sent together by a back-fill (one wake-up of the session per batch,
/// signatures computed on every core).
pub const BATCH: usize = 256;

/// Sends every row after `since`, signed like live entries, to `out` in batches of `batch`
/// messages (the last of each pass may be shorter): first from SQLite, then entries of the
/// retained data logs that SQLite did not have yet (see [`crate::backfill::logindex`]). Each batch is
/// signed in parallel on rayon's pool, in order. Runs on a blocking thread; stops early if the
/// session went away.
pub fn backfill(
    db: &ArchiverDb,
    signer: &Signer<'_>,
    since: &Since,
    logs: Option<&LogScan>,
    index: Option<&crate::backfill::logindex::LogIndex>,
    out: &mpsc::Sender<Vec<Shared>>,
    batch: usize,
) -> firehose_dbstore::Result<Backfilled> {
    backfill_limited(db, signer, since, logs, index, out, batch, u64::MAX)
}

/// [`backfill`], stopping after `limit` entries ([`Backfilled::cut`] then says so).
#[allow(clippy::too_many_arguments)] // backfill's inputs, plus the limit
pub fn backfill_limited(
    db: &ArchiverDb,
    signer: &Signer<'_>,
    since: &Since,
    logs: Option<&LogScan>,
    index: Option<&crate::backfill::logindex::LogIndex>,
    out: &mpsc::Sender<Vec<Shared>>,
    batch: usize,
    limit: u64,
) -> firehose_dbstore::Result<Backfilled> {
    let mut done = Backfilled {
        reached: since.clone(),
        ..Backfilled::default()
    };
    let mut signer = Batcher {
        signer,
        out,
        size: batch.max(1),
        pending: Vec::with_capacity(batch.clamp(1, BATCH * 4)),
        keys: Vec::with_capacity(batch.clamp(1, BATCH * 4)),
    };
    // Each entry goes out with its key, so that the session can tell how far its collector
    // got; `false` stops the back-fill (the session went away, or the limit is reached).
    let send = |done: &mut Backfilled,
                signer: &mut Batcher<'_>,
                key: RecordKey,
                canonical: Bytes|
     -> bool {
        if done.ids.len() as u64 >= limit {
            done.cut = true;
            return false;
        }
        done.ids.insert((key.data_type, key.id.to_string()));
        signer.push(key, canonical)
    };
    let send_record = |done: &mut Backfilled, signer: &mut Batcher<'_>, r: Record| -> bool {
        if done.ids.len() as u64 >= limit {
            done.cut = true;
            return false;
        }
        done.from_db += 1;
        done.reached.advance(&r);
        let canonical = Bytes::from(r.to_canonical_json());
        send(done, signer, RecordKey::of(&r), canonical)
    };
    // Cycles after the given counter.
    // `since` comes from the collector: a counter at the end of the range has nothing after it.
    if let Some(mut from) = since.cycle.and_then(|last| last.checked_add(1)) {
        loop {
            let page: Vec<Cycle> = db.cycles_between(from, u64::MAX >> 1, PAGE)?;
            let Some(end) = page.last().map(|c| c.counter) else {
                break;
            };
            for c in page {
                if !send_record(&mut done, &mut signer, Record::Cycle(c)) {
                    signer.flush();
                    return Ok(done);
                }
            }
            let Some(next) = end.checked_add(1) else {
                break;
            };
            from = next;
        }
    }
    // Each pass ends with a flush: what the session has is a prefix of every type's order.
    if !signer.flush() {
        return Ok(done);
    }
    if let Some(k) = &since.original_tx {
        let sent =
            backfill_keyed::<OriginalTxData>(db, k, |r| send_record(&mut done, &mut signer, r))?;
        if !signer.flush() || !sent {
            return Ok(done);
        }
    }
    if let Some(k) = &since.receipt {
        let sent = backfill_keyed::<Receipt>(db, k, |r| send_record(&mut done, &mut signer, r))?;
        if !signer.flush() || !sent {
            return Ok(done);
        }
    }
    let Some(logs) = logs else { return Ok(done) };
    for (i, t) in DataType::ALL.into_iter().enumerate() {
        let wanted = match t {
            DataType::Cycle => since.cycle.is_some(),
            DataType::OriginalTx => since.original_tx.is_some(),
            DataType::Receipt => since.receipt.is_some(),
        };
        if !wanted {
            continue;
        }
        let files = LogFiles::new(&logs.dir, t.log_name()).with_max_log_files(logs.max_log_files);
        let mut reader = DataLogReader::with_files(files, t, logs.start[i]);
        let mut events = Vec::new();
        // At the first entry from the logs, and after a gap in them: is anything missing
        // between what was sent and this entry?
        let mut check = true;
        loop {
            events.clear();
            match reader.read_available(512, &mut events) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, data_type = %t, "back-fill: data logs unreadable; SQLite rows only");
                    break;
                }
            }
            for ev in events.drain(..) {
                let e = match ev {
                    LogEvent::Entry(e) => e,
                    LogEvent::Gap(_) => {
                        check = true;
                        continue;
                    }
                    // No resume keys: an untyped entry is delivered live only.
                    LogEvent::Malformed(_) | LogEvent::Untyped(_) => continue,
                };
                let key = (t, e.key.id.to_string());
                if !since.precedes_key(&e.key) || done.ids.contains(&key) {
                    continue;
                }
                if check {
                    if committed_between(db, &done.reached, &e.key)? {
                        done.lapped = Some(t);
                        signer.flush();
                        return Ok(done);
                    }
                    check = false;
                }
                if done.ids.len() as u64 >= limit {
                    done.cut = true;
                    signer.flush();
                    return Ok(done);
                }
                done.from_logs += 1;
                done.reached.advance_key(&e.key);
                if !send(&mut done, &mut signer, e.key, e.raw) {
                    signer.flush();
                    return Ok(done);
                }
            }
        }
        if !signer.flush() {
            return Ok(done);
        }
        if let (Some(index), Some(pos)) = (index, reader.position()) {
            index.checkpoint(t, pos, std::time::Instant::now());
        }
    }
    Ok(done)
}

/// How a back-fill signs: the distributor's keys, and the signatures other back-fills made.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// Hash key and stringifier.
    pub crypto: &'a Crypto,
    /// The distributor's keys.
    pub keys: &'a KeyPair,
    /// Signatures shared between back-fills.
    pub cache: &'a SignatureCache,
}

/// Collects a back-fill's entries and sends them signed, a batch at a time.
struct Batcher<'a> {
    signer: &'a Signer<'a>,
    out: &'a mpsc::Sender<Vec<Shared>>,
    size: usize,
    pending: Vec<(DataType, Bytes)>,
    keys: Vec<RecordKey>,
}

impl Batcher<'_> {
    /// Queues an entry (canonical JSON); sends the batch when full. `false`: session gone.
    fn push(&mut self, key: RecordKey, canonical: Bytes) -> bool {
        self.pending.push((key.data_type, canonical));
        self.keys.push(key);
        self.pending.len() < self.size || self.flush()
    }

    /// Signs what is queued on every core, in order, and sends it. `false`: session gone.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let s = self.signer;
        let signed: Vec<Shared> = s
            .cache
            .signed_entries(s.crypto, s.keys, &self.pending)
            .into_iter()
            .zip(self.keys.drain(..))
            .map(|(msg, key)| {
                let msg = String::from_utf8(msg).expect("canonical JSON is UTF-8");
                Outgoing::new(msg, Some(key))
            })
            .collect();
        self.pending.clear();
        self.out.blocking_send(signed).is_ok()
    }
}

/// Sends the rows of `T` after `from` (every cycle after it), page by page; `false` if the
/// session went away.
fn backfill_keyed<T: KeyedRow>(
    db: &ArchiverDb,
    from: &PageKey,
    mut send: impl FnMut(Record) -> bool,
) -> firehose_dbstore::Result<bool> {
    let mut after = from.clone();
    loop {
        let page = db.rows_after::<T>(after.cycle, u64::MAX >> 1, Some(&after), PAGE)?;
        let Some(last) = page.last() else {
            return Ok(true);
        };
        after = last.page_key();
        for row in page {
            if !send(row.into_record()) {
                return Ok(false);
            }
        }
    }
}

/// Whether SQLite holds a row of `next`'s type after `reached` and before `next`: rows
/// committed after the database pass whose log entries were rotated out before the log scan
/// reached them (the writer lapped the back-fill). One indexed query.
fn committed_between(
    db: &ArchiverDb,
    reached: &Since,
    next: &RecordKey,
) -> firehose_dbstore::Result<bool> {
    match next.data_type {
        DataType::Cycle => {
            let from = reached.cycle.map_or(0, |l| l.saturating_add(1));
            Ok(next.cycle > from && !db.cycles_between(from, next.cycle - 1, 1)?.is_empty())
        }
        DataType::OriginalTx => {
            first_row_before::<OriginalTxData>(db, reached.original_tx.as_ref(), next.page_key())
        }
        DataType::Receipt => {
            first_row_before::<Receipt>(db, reached.receipt.as_ref(), next.page_key())
        }
    }
}

/// Whether the first row of `T` after `after` comes before `next`.
fn first_row_before<T: KeyedRow>(
    db: &ArchiverDb,
    after: Option<&PageKey>,
    next: PageKey,
) -> firehose_dbstore::Result<bool> {
    let start = after.map_or(0, |k| k.cycle);
    let first = db.rows_after::<T>(start, next.cycle, after, 1)?;
    Ok(first.first().is_some_and(|row| row.page_key() < next))
}

/// (type, id) of the records sent during a back-fill.
pub type SentIds = HashSet<(DataType, String)>;

/// Live messages checked by a [`Handover`] before it retires.
pub const HANDOVER_WINDOW: usize = 10_000;

/// Filters the live stream of a resumed session: skips entries the collector already has
/// (at or before its `since` point: the live reader may lag behind the database, or behind a
/// collector that resumes from another distributor) and entries the back-fill sent. Retires
/// after [`HANDOVER_WINDOW`] live messages.
#[derive(Debug)]
pub struct Handover {
    since: Since,
    ids: SentIds,
    checked: usize,
}

impl Handover {
    /// A filter for a session resumed at `since` whose back-fill sent `ids`.
    pub fn new(since: Since, ids: SentIds) -> Self {
        Self {
            since,
            ids,
            checked: 0,
        }
    }

    /// Whether to skip the live message of the record with `key` (computed when the entry
    /// was read: nothing is parsed here). Entries without a key are never skipped.
    pub fn skip(&mut self, key: Option<&RecordKey>) -> bool {
        self.checked += 1;
        let Some(key) = key else {
            return false;
        };
        self.since.has(key) || self.ids.remove(&(key.data_type, key.id.to_string()))
    }

    /// Whether it has checked enough messages to retire.
    pub fn done(&self) -> bool {
        self.checked >= HANDOVER_WINDOW
    }
}
