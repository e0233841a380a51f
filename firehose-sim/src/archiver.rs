//! A simulated archiver: writes cycles, original transactions and receipts to data logs (like
//! the archiver's DataLogWriter) and to an archiver-shaped SQLite database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firehose_core::records::Record;
use firehose_dbstore::fixture::{self, DbWriter, FixtureSpec};
use firehose_dbstore::Layout;
use firehose_logreader::{DataLogWriter, WriterOptions};

/// A simulated archiver writing into `dir`: `dir/data-logs/127.0.0.1_4000/` and `dir/db/`.
#[derive(Debug)]
pub struct ArchiverSim {
    logs: PathBuf,
    layout: Layout,
    spec: FixtureSpec,
    writers: [DataLogWriter; 3],
    db: DbWriter,
    next_cycle: u64,
}

impl ArchiverSim {
    /// Creates the directories; `spec` sets receipts/txs per cycle and sizes; log files rotate
    /// every `max_entries` entries. On an existing directory it continues like a restarted
    /// archiver: the log rings where they are, cycles after the newest in the database.
    pub fn create(dir: &Path, spec: FixtureSpec, max_entries: u64) -> anyhow::Result<Self> {
        let logs = dir.join("data-logs").join("127.0.0.1_4000");
        std::fs::create_dir_all(&logs)?;
        let layout = Layout::Directory(dir.join("db"));
        let opts = WriterOptions {
            max_entries,
            ..WriterOptions::default()
        };
        let writers = [
            DataLogWriter::open(&logs, "cycle", opts)?,
            DataLogWriter::open(&logs, "originalTx", opts)?,
            DataLogWriter::open(&logs, "receipt", opts)?,
        ];
        let db = DbWriter::create(&layout)?;
        // A restarted archiver goes on after its newest cycle.
        let next_cycle = firehose_dbstore::ArchiverDb::open(&layout)?
            .latest_cycle()?
            .map_or(0, |c| c.counter + 1);
        Ok(Self {
            logs,
            layout,
            spec,
            writers,
            db,
            next_cycle,
        })
    }

    /// The data-log directory (`DATA_LOG_DIR`).
    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    /// The database layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Writes the next cycle with its txs and receipts: database first, then the logs (as the
    /// archiver does); returns the records written.
    pub fn write_cycle(&mut self) -> anyhow::Result<Vec<Record>> {
        let all = self.next_records();
        self.db.write_batch(&all)?;
        self.append_logs(&all)?;
        Ok(all)
    }

    /// Like [`write_cycle`](Self::write_cycle), but only to the logs: the records reach the
    /// database when [`commit`](Self::commit) is called (an archiver whose commit lags).
    pub fn write_cycle_logs_first(&mut self) -> anyhow::Result<Vec<Record>> {
        let all = self.next_records();
        self.append_logs(&all)?;
        Ok(all)
    }

    /// Writes records to the database (after [`write_cycle_logs_first`](Self::write_cycle_logs_first)).
    pub fn commit(&mut self, records: &[Record]) -> anyhow::Result<()> {
        self.db.write_batch(records)?;
        Ok(())
    }

    fn next_records(&mut self) -> Vec<Record> {
        // Timestamps of "now", so that collectors can measure their lag.
        let c = self.next_cycle;
        self.spec.start_ms = firehose_core::since::now_ms().saturating_sub(c * 60_000);
        let (cycle, txs, receipts) = fixture::records_of_cycle(&self.spec, c);
        self.next_cycle += 1;
        std::iter::once(cycle).chain(txs).chain(receipts).collect()
    }

    fn append_logs(&mut self, all: &[Record]) -> anyhow::Result<()> {
        for r in all {
            let w = match r {
                Record::Cycle(_) => &mut self.writers[0],
                Record::OriginalTx(_) => &mut self.writers[1],
                Record::Receipt(_) => &mut self.writers[2],
            };
            w.append(r.to_canonical_json().as_bytes())?;
        }
        for w in &mut self.writers {
            w.flush()?;
        }
        Ok(())
    }

    /// Writes a cycle every `interval`, forever (run it on its own thread).
    pub fn run(mut self, interval: Duration) -> anyhow::Result<()> {
        loop {
            self.write_cycle()?;
            std::thread::sleep(interval);
        }
    }
}
