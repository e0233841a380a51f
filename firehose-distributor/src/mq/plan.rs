//! What one round publishes: the rows of the cycle window after the cursor that were not
//! published yet (or grew a newer timestamp), each signed once ([`Signer`]), and what was
//! published in cycles still open for late data ([`Open`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::message::encode_signed_entry;
use firehose_core::records::{DataType, OriginalTxData, Receipt, Record};
use firehose_dbstore::{ArchiverDb, KeyedRow, MAX_PAGE};

use super::message_id;
use super::state::Cursor;

/// Most keys read per data type and round; a window with more rows is logged as an error
/// (far beyond any real network's cycles).
const KEY_LIMIT: usize = 5_000_000;

/// One message ready to publish.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) data_type: DataType,
    pub(super) message_id: String,
    pub(super) body: Vec<u8>,
    pub(super) cycle: u64,
    pub(super) id: String,
    pub(super) timestamp: u64,
}

/// What was published (and confirmed) in cycles after the cursor.
#[derive(Debug, Default)]
pub(super) struct Open {
    pub(super) cycles: BTreeSet<u64>,
    /// cycle → id → newest timestamp published.
    pub(super) rows: [BTreeMap<u64, HashMap<String, u64>>; 2],
}

pub(super) fn row_slot(t: DataType) -> usize {
    match t {
        DataType::OriginalTx => 0,
        _ => 1,
    }
}

impl Open {
    pub(super) fn published(&self, t: DataType, cycle: u64, id: &str) -> Option<u64> {
        self.rows[row_slot(t)]
            .get(&cycle)
            .and_then(|m| m.get(id))
            .copied()
    }

    pub(super) fn record(&mut self, it: &Item) {
        match it.data_type {
            DataType::Cycle => {
                self.cycles.insert(it.cycle);
            }
            t => {
                let ts = self.rows[row_slot(t)]
                    .entry(it.cycle)
                    .or_default()
                    .entry(it.id.clone())
                    .or_insert(it.timestamp);
                *ts = (*ts).max(it.timestamp);
            }
        }
    }

    /// Forgets cycles up to `through` (they are behind the cursor now).
    pub(super) fn settle(&mut self, through: u64) {
        self.cycles = self.cycles.split_off(&(through + 1));
        for m in &mut self.rows {
            *m = m.split_off(&(through + 1));
        }
    }
}

/// The work of one round.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) items: Vec<Item>,
    pub(super) newest: Option<u64>,
    pub(super) hi: u64,
}

pub(super) struct Signer {
    pub(super) db: Mutex<ArchiverDb>,
    pub(super) crypto: Crypto,
    pub(super) keys: KeyPair,
}

impl Signer {
    pub(super) fn item(&self, r: Record) -> Item {
        let (cycle, id, timestamp) = match &r {
            Record::Cycle(c) => (c.counter, c.cycle_marker.clone(), 0),
            Record::OriginalTx(t) => (t.cycle, t.tx_id.clone(), t.timestamp),
            Record::Receipt(x) => (x.cycle, x.receipt_id.clone(), x.timestamp),
        };
        Item {
            data_type: r.data_type(),
            message_id: message_id(&r),
            body: encode_signed_entry(
                &self.crypto,
                &self.keys,
                r.data_type(),
                r.to_canonical_json().as_bytes(),
            ),
            cycle,
            id,
            timestamp,
        }
    }

    /// Finds and signs what to publish in the window after `cursor`.
    pub(super) fn plan(
        &self,
        cursor: Cursor,
        open: &Open,
        span: u64,
    ) -> Result<Plan, firehose_dbstore::Error> {
        let db = self.db.lock().expect("db lock");
        let Some(newest) = db.latest_cycle()?.map(|c| c.counter) else {
            return Ok(Plan::default());
        };
        let lo = cursor.through.map_or(0, |t| t + 1);
        let mut plan = Plan {
            items: Vec::new(),
            newest: Some(newest),
            hi: newest.min(lo.saturating_add(span - 1)),
        };
        if lo > newest {
            return Ok(plan);
        }
        let mut from = lo;
        loop {
            let page = db.cycles_between(from, plan.hi, MAX_PAGE)?;
            let Some(last) = page.last().map(|c| c.counter) else {
                break;
            };
            for c in page {
                if !open.cycles.contains(&c.counter) {
                    plan.items.push(self.item(Record::Cycle(c)));
                }
            }
            from = last + 1;
        }
        self.plan_keyed::<OriginalTxData>(&db, lo, open, &mut plan)?;
        self.plan_keyed::<Receipt>(&db, lo, open, &mut plan)?;
        Ok(plan)
    }

    /// Adds the rows of `T` in cycles `lo ..= plan.hi` that are new, or newer than published.
    pub(super) fn plan_keyed<T: KeyedRow>(
        &self,
        db: &ArchiverDb,
        lo: u64,
        open: &Open,
        plan: &mut Plan,
    ) -> firehose_dbstore::Result<()> {
        let t = T::DATA_TYPE;
        let keys = db.keys_in_cycles::<T>(lo, plan.hi, KEY_LIMIT)?;
        if keys.len() == KEY_LIMIT {
            tracing::error!(data_type = %t, "more than {KEY_LIMIT} rows in cycles {lo}..={}: publishing the first ones this round", plan.hi);
        }
        for k in keys {
            if open
                .published(t, k.cycle, &k.id)
                .is_some_and(|ts| ts >= k.timestamp)
            {
                continue;
            }
            // Gone or replaced since the keys were read: the next round sees the new row.
            if let Some(row) = db.row_by_key::<T>(&k)? {
                plan.items.push(self.item(row.into_record()));
            }
        }
        Ok(())
    }
}
