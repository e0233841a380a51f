//! The history API's routes, typed: the requests relayer-collector makes (see the
//! distributor's README for each selector) and their replies as Rust types.
//!
//! Receipts and original transactions share one set of selectors ([`Keyed`], for any
//! [`KeyedRecord`]); accounts and transactions are rows the core crate does not type
//! ([`Page`] of JSON objects with the route's total).

use std::marker::PhantomData;

use firehose_core::keyed::KeyedRecord;
use firehose_core::protocol::history::{Route, ACCOUNTS, CYCLES, TOTAL_DATA, TRANSACTIONS};
use firehose_core::records::Cycle;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{HttpClient, HttpError};

/// `/totalData`: rows per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Totals {
    /// Cycles.
    #[serde(rename = "totalCycles")]
    pub cycles: u64,
    /// Accounts.
    #[serde(rename = "totalAccounts")]
    pub accounts: u64,
    /// Transactions.
    #[serde(rename = "totalTransactions")]
    pub transactions: u64,
    /// Receipts.
    #[serde(rename = "totalReceipts")]
    pub receipts: u64,
    /// Original transactions.
    #[serde(rename = "totalOriginalTxs")]
    pub original_txs: u64,
}

/// Rows of one cycle, as a `type: "tally"` reply lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleTally {
    /// Cycle counter.
    pub cycle: u64,
    /// Rows in that cycle.
    pub count: u64,
}

/// A page of `/account` or `/transaction` rows with the route's total for the cycle span.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The rows (database rows, JSON columns parsed).
    pub rows: Vec<Value>,
    /// `totalAccounts` / `totalTransactions` for the span.
    pub total: u64,
}

impl HttpClient {
    /// `/totalData`.
    pub async fn total_data(&self) -> Result<Totals, HttpError> {
        let v = self.post(TOTAL_DATA, json!({})).await?;
        Totals::deserialize(&v).map_err(|source| HttpError::Row {
            key: "totalData",
            source,
        })
    }

    /// `/cycleinfo {start, end}`: cycles with counters `start ..= end` (at most 101).
    pub async fn cycles(&self, start: u64, end: u64) -> Result<Vec<Cycle>, HttpError> {
        let v = self
            .post(CYCLES.path, json!({"start": start, "end": end}))
            .await?;
        cycles(&v)
    }

    /// `/cycleinfo {count}`: the newest `count` cycles (1..=100), newest first.
    pub async fn latest_cycles(&self, count: u64) -> Result<Vec<Cycle>, HttpError> {
        let v = self.post(CYCLES.path, json!({ "count": count })).await?;
        cycles(&v)
    }

    /// The selectors of `/receipt` (`T` = `Receipt`) or `/originalTx` (`OriginalTxData`).
    pub fn keyed<T: KeyedRecord>(&self) -> Keyed<'_, T> {
        Keyed {
            api: self,
            _record: PhantomData,
        }
    }

    /// `/account {startCycle, endCycle, page}`: 1000 accounts a page (from 1) and the total.
    pub async fn accounts(&self, start: u64, end: u64, page: u64) -> Result<Page, HttpError> {
        self.page(ACCOUNTS, start, end, page).await
    }

    /// `/transaction {startCycle, endCycle, page}`: 1000 transactions a page and the total.
    pub async fn transactions(&self, start: u64, end: u64, page: u64) -> Result<Page, HttpError> {
        self.page(TRANSACTIONS, start, end, page).await
    }

    /// `/account {startCycle, endCycle}`: accounts in cycles `start ..= end`.
    pub async fn account_total(&self, start: u64, end: u64) -> Result<u64, HttpError> {
        let v = self
            .post(ACCOUNTS.path, json!({"startCycle": start, "endCycle": end}))
            .await?;
        number(&v, ACCOUNTS.total)
    }

    /// `/transaction {startCycle, endCycle}`: transactions in cycles `start ..= end`.
    pub async fn transaction_total(&self, start: u64, end: u64) -> Result<u64, HttpError> {
        let v = self
            .post(
                TRANSACTIONS.path,
                json!({"startCycle": start, "endCycle": end}),
            )
            .await?;
        number(&v, TRANSACTIONS.total)
    }

    async fn page(&self, route: Route, start: u64, end: u64, page: u64) -> Result<Page, HttpError> {
        let (key, total_key) = (route.rows, route.total);
        let v = self
            .post(
                route.path,
                json!({"startCycle": start, "endCycle": end, "page": page}),
            )
            .await?;
        Ok(Page {
            rows: list(&v, key)?.to_vec(),
            total: number(&v, total_key)?,
        })
    }
}

/// The selectors of one keyed route, from [`HttpClient::keyed`].
#[derive(Debug)]
pub struct Keyed<'a, T> {
    api: &'a HttpClient,
    _record: PhantomData<T>,
}

impl<T: KeyedRecord> Keyed<'_, T> {
    async fn rows(&self, body: Value) -> Result<Vec<T>, HttpError> {
        let v = self.api.post(T::ROUTE, body).await?;
        typed(list(&v, T::LIST)?, T::LIST)
    }

    /// `{startCycle, endCycle, page}`: page `page` (from 1, 100 a page) of cycles
    /// `start ..= end`, in (cycle, timestamp) order.
    pub async fn in_cycles(&self, start: u64, end: u64, page: u64) -> Result<Vec<T>, HttpError> {
        self.rows(json!({"startCycle": start, "endCycle": end, "page": page}))
            .await
    }

    /// `{start, end}`: rows `start ..= end` of the whole table (at most 101).
    pub async fn at(&self, start: u64, end: u64) -> Result<Vec<T>, HttpError> {
        self.rows(json!({"start": start, "end": end})).await
    }

    /// `{count}`: the newest `count` rows (1..=100), newest first.
    pub async fn latest(&self, count: u64) -> Result<Vec<T>, HttpError> {
        self.rows(json!({ "count": count })).await
    }

    /// `{txId}`: the row of one transaction, if stored.
    pub async fn by_tx_id(&self, tx_id: &str) -> Result<Option<T>, HttpError> {
        Ok(self
            .rows(json!({ "txId": tx_id }))
            .await?
            .into_iter()
            .next())
    }

    /// `{startCycle, endCycle, type: "count"}`: rows in cycles `start ..= end`.
    pub async fn count(&self, start: u64, end: u64) -> Result<u64, HttpError> {
        let v = self
            .api
            .post(
                T::ROUTE,
                json!({"startCycle": start, "endCycle": end, "type": "count"}),
            )
            .await?;
        number(&v, T::LIST)
    }

    /// `{startCycle, endCycle, type: "tally"}`: rows per cycle (cycles with rows only).
    pub async fn tally(&self, start: u64, end: u64) -> Result<Vec<CycleTally>, HttpError> {
        let v = self
            .api
            .post(
                T::ROUTE,
                json!({"startCycle": start, "endCycle": end, "type": "tally"}),
            )
            .await?;
        list(&v, T::LIST)?
            .iter()
            .map(|e| {
                Some(CycleTally {
                    cycle: e.get("cycle")?.as_u64()?,
                    count: e.get(T::TALLY)?.as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(HttpError::Missing(T::TALLY))
    }
}

fn list<'v>(v: &'v Value, key: &'static str) -> Result<&'v [Value], HttpError> {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or(HttpError::Missing(key))
}

fn number(v: &Value, key: &'static str) -> Result<u64, HttpError> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or(HttpError::Missing(key))
}

fn typed<T: DeserializeOwned>(rows: &[Value], key: &'static str) -> Result<Vec<T>, HttpError> {
    rows.iter()
        .map(|r| T::deserialize(r).map_err(|source| HttpError::Row { key, source }))
        .collect()
}

/// `/cycleinfo` rows are `{counter, marker, …}`: the record itself, its marker its id.
fn cycles(v: &Value) -> Result<Vec<Cycle>, HttpError> {
    list(v, CYCLES.rows)?
        .iter()
        .map(|r| {
            Some(Cycle {
                counter: r.get("counter")?.as_u64()?,
                cycle_marker: r.get("marker")?.as_str()?.to_owned(),
                cycle_record: r.clone(),
                extra: Default::default(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(HttpError::Missing(CYCLES.rows))
}
