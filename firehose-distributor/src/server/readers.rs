//! The live log readers: one per data log, each entry counted, signed once and published
//! to every session.

use crate::metrics::Counter;
use crate::metrics::{DataTypeLabel, Family, Registry};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use firehose_core::message::encode_signed_entry;
use firehose_core::records::DataType;
use firehose_core::since::RecordKey;
use firehose_logreader::{tail_all, tail_readers, LogEvent, StartAt, TailOptions};

use crate::auth;
use crate::server::Distributor;

impl Distributor {
    /// Starts one reader per data log (live) and publishes every entry to the hub.
    pub async fn start_readers(
        self: &Arc<Self>,
    ) -> firehose_logreader::Result<tokio::task::JoinHandle<()>> {
        let (dir, poll, max_line) = {
            let c = self.config();
            (
                c.data_log_dir.clone(),
                c.file_stream_interval_ms,
                c.max_log_line_bytes,
            )
        };
        let opts = TailOptions {
            poll_interval: Duration::from_millis(poll.max(10) * 5),
            max_line_bytes: max_line,
            ..TailOptions::default()
        };
        let replay = self.config().replay_buffer_bytes > 0;
        let mut tail = if replay {
            // From the oldest retained entry: the replay buffer is filled first, then the
            // same readers go on live (crate::server::prefill).
            let readers = DataType::ALL.map(|t| {
                let files = firehose_logreader::files::LogFiles::new(&dir, t.log_name())
                    .with_max_log_files(opts.max_log_files);
                firehose_logreader::DataLogReader::with_files(files, t, StartAt::Oldest)
                    .with_max_line_bytes(max_line)
            });
            let newest = self.newest_in_db().await;
            let me = self.clone();
            let readers = tokio::task::spawn_blocking(move || me.prefill(readers, newest))
                .await
                .map_err(|e| firehose_logreader::Error::Io {
                    path: dir.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            tail_readers(readers, opts).await?
        } else {
            tail_all(&dir, |_| StartAt::Live, opts).await?
        };
        let me = self.clone();
        Ok(tokio::spawn(async move {
            while let Some(ev) = tail.recv().await {
                match ev {
                    LogEvent::Entry(e) => {
                        me.log_index.entry_read(e.data_type, e.position);
                        me.note_entry(&e);
                        me.count_read(e.data_type, e.recanonicalized);
                        // The key moves into the message: nothing is copied per entry.
                        me.publish_entry(e.data_type, &e.raw, Some(e.key));
                    }
                    LogEvent::Untyped(u) => {
                        // Forwarded as the original forwards any JSON object; it has no
                        // resume keys, so a resume's log scan passes it over.
                        me.log_index.entry_read(u.data_type, u.position);
                        me.count_read(u.data_type, u.recanonicalized);
                        let r = &me.readers[u.data_type.index()];
                        r.untyped.inc();
                        tracing::info!(data_type = %u.data_type, reason = %u.reason, "forwarding a data-log entry that lacks typed fields (live only: resumes skip it)");
                        me.publish_entry(u.data_type, &u.raw, None);
                    }
                    LogEvent::Malformed(m) => {
                        me.readers[m.data_type.index()].malformed.inc();
                        tracing::warn!(path = %m.path.display(), line = m.line, reason = %m.reason, "skipped a malformed data-log line")
                    }
                    LogEvent::Gap(g) => {
                        let r = &me.readers[g.data_type.index()];
                        r.gaps.inc();
                        r.gap_bytes.inc_by(g.bytes);
                        tracing::error!(data_type = %g.data_type, reason = %g.reason, "data-log gap");
                    }
                }
            }
        }))
    }

    /// Counts an entry read (typed or not) for `/metrics`.
    fn count_read(&self, t: DataType, recanonicalized: bool) {
        let r = &self.readers[t.index()];
        r.entries.inc();
        r.recanonicalized.inc_by(u64::from(recanonicalized));
        r.last_read_ms.store(auth::now_ms(), Relaxed);
    }

    /// Signs a canonical entry once and publishes it to every session.
    fn publish_entry(&self, t: DataType, raw: &[u8], key: Option<RecordKey>) {
        let msg = encode_signed_entry(&self.crypto, &self.keys, t, raw);
        // Entries are canonical JSON, written from parsed values or checked: UTF-8.
        match String::from_utf8(msg) {
            Ok(s) => self.hub.publish(&crate::ws::hub::Outgoing::new(s, key)),
            Err(_) => tracing::error!("entry is not UTF-8; skipped"),
        }
    }

    fn note_entry(&self, e: &firehose_logreader::LogEntry) {
        let r = &self.readers[e.data_type.index()];
        r.file_number
            .store(u64::from(e.position.file_number), Relaxed);
        r.offset.store(e.position.offset, Relaxed);
        let ms = e.time_ms;
        r.last_record_ms.store(ms, Relaxed);
    }
}

/// What a live reader has done (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct ReaderStats {
    pub(crate) entries: Counter,
    pub(crate) malformed: Counter,
    /// Entries lost because files went away before they were read.
    pub(crate) gaps: Counter,
    pub(crate) file_number: std::sync::atomic::AtomicU64,
    pub(crate) offset: std::sync::atomic::AtomicU64,
    /// Wall-clock ms of the last entry's record timestamp (cycle start for cycles), 0 if none.
    pub(crate) last_record_ms: std::sync::atomic::AtomicU64,
    /// Bytes known lost in gaps (files truncated under the reader).
    pub(crate) gap_bytes: Counter,
    /// Entries forwarded without typed fields ([`firehose_logreader::UntypedEntry`]).
    pub(crate) untyped: Counter,
    /// Entries whose line was not canonical and was re-serialised before signing.
    pub(crate) recanonicalized: Counter,
    /// Wall-clock ms when the last entry was read, 0 if none.
    pub(crate) last_read_ms: std::sync::atomic::AtomicU64,
    /// Rows in the database when the readers started (the original's `/metrics` counts from there).
    pub(crate) baseline: std::sync::atomic::AtomicU64,
}

impl ReaderStats {
    /// One reader's stats per data type (in [`DataType::ALL`] order), its counters registered
    /// in `registry` labelled by data type.
    pub(crate) fn registered(registry: &Registry) -> [ReaderStats; 3] {
        let family = |name: &str, help: &str| {
            let f = Family::<DataTypeLabel, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let entries = family(
            "firehose_distributor_reader_entries",
            "Entries read from the data log.",
        );
        let malformed = family(
            "firehose_distributor_reader_malformed",
            "Malformed data-log lines skipped.",
        );
        let gaps = family(
            "firehose_distributor_reader_gaps",
            "Times the reader found data-log files gone before it read them (entries lost).",
        );
        let gap_bytes = family(
            "firehose_distributor_reader_gap_bytes",
            "Bytes known lost in gaps (a data-log file truncated under the reader).",
        );
        let untyped = family("firehose_distributor_reader_untyped", "Entries forwarded as they are because typed fields are missing or null (live only: resumes skip them).");
        let recanonicalized = family(
            "firehose_distributor_reader_recanonicalized",
            "Entries whose line was not canonical JSON and was re-serialised before signing.",
        );
        DataType::ALL.map(|t| {
            let l = DataTypeLabel {
                data_type: t.log_name(),
            };
            ReaderStats {
                entries: entries.get_or_create(&l).clone(),
                malformed: malformed.get_or_create(&l).clone(),
                gaps: gaps.get_or_create(&l).clone(),
                gap_bytes: gap_bytes.get_or_create(&l).clone(),
                untyped: untyped.get_or_create(&l).clone(),
                recanonicalized: recanonicalized.get_or_create(&l).clone(),
                ..ReaderStats::default()
            }
        })
    }
}
