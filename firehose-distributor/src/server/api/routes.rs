//! Each route's selectors, tried in the original's order; the first present one wins.
//!
//! | route | selectors, in order |
//! |---|---|
//! | `/cycleinfo` | `count`, `start` (+`end`) |
//! | `/receipt`, `/originalTx` | `count`, `txId`, `txIdList`, `start` (+`end`), `startCycle` (+`endCycle`, `type` tally/count, `page`); none: empty list |
//! | `/account` | `count`, `start` (+`end`), `startCycle` (+`endCycle`: total; +`page`: rows and total), `accountId` |
//! | `/transaction` | `count`, `start` (+`end`), `startCycle` (as accounts), `txId`, `appReceiptId` |

use firehose_core::protocol::history;
use firehose_core::records::{OriginalTxData, Receipt};
use firehose_dbstore::history::{Selection, Table};
use firehose_dbstore::history_json::JsonRows;
use firehose_dbstore::KeyedRow;
use serde_json::{json, Value};

use super::error::{with_db, ApiError};
use super::reply::{Part, Reply};
use super::request::{count, page_skip, span, Body, Kind, MAX_SPAN, PAGE_SIZE, ROW_PAGE_SIZE};
use crate::server::Distributor;

/// A history route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/totalData`.
    TotalData,
    /// `/cycleinfo`.
    CycleInfo,
    /// `/receipt`.
    Receipt,
    /// `/originalTx`.
    OriginalTx,
    /// `/account`.
    Account,
    /// `/transaction`.
    Transaction,
}

impl Route {
    /// The URL path.
    pub fn path(self) -> &'static str {
        match self {
            Route::TotalData => history::TOTAL_DATA,
            Route::CycleInfo => history::CYCLES.path,
            Route::Receipt => history::RECEIPTS.path,
            Route::OriginalTx => history::ORIGINAL_TXS.path,
            Route::Account => history::ACCOUNTS.path,
            Route::Transaction => history::TRANSACTIONS.path,
        }
    }
}

use Kind::{Number as N, String as S};

/// Answers a verified request `v` on `route`.
pub(super) async fn answer(d: &Distributor, route: Route, v: &Value) -> Result<Reply, ApiError> {
    match route {
        Route::TotalData => total_data(d).await,
        Route::CycleInfo => cycle_info(d, v).await,
        Route::Receipt => keyed(d, v, Table::Receipts).await,
        Route::OriginalTx => keyed(d, v, Table::OriginalTxs).await,
        Route::Account | Route::Transaction => rows(d, v, route).await,
    }
}

async fn total_data(d: &Distributor) -> Result<Reply, ApiError> {
    let [cycles, accounts, transactions, receipts, original_txs] = with_db(d, |db| {
        let total = |t| db.history_count(t, None);
        Ok([
            total(Table::Cycles)?,
            total(Table::Accounts)?,
            total(Table::Transactions)?,
            total(Table::Receipts)?,
            total(Table::OriginalTxs)?,
        ])
    })
    .await?;
    Ok(Reply::one("totalCycles", Value::from(cycles))
        .with("totalAccounts", Value::from(accounts))
        .with("totalTransactions", Value::from(transactions))
        .with("totalReceipts", Value::from(receipts))
        .with("totalOriginalTxs", Value::from(original_txs))
        .with("pid", Value::from(std::process::id())))
}

/// The rows of `sel`, as canonical JSON (never parsed into values on the way).
async fn select(d: &Distributor, table: Table, sel: Selection<'static>) -> Result<Part, ApiError> {
    let seeks = d.db().seek_points();
    with_db(d, move |db| {
        let mut rows = JsonRows::new();
        // Row-offset pages start where an earlier page ended, instead of walking the offset.
        db.history_json_seeking(table, sel, &mut rows, &seeks)?;
        Ok(Part::Json(rows.finish()))
    })
    .await
}

async fn cycle_info(d: &Distributor, v: &Value) -> Result<Reply, ApiError> {
    let b = Body::check(v, &[("start", N), ("end", N), ("count", N)])?;
    let rows = if let Some(c) = b.truthy_num("count")? {
        // The original's message has a full stop on this route only.
        let count = count(c, MAX_SPAN).map_err(|e| e.with_suffix("."))?;
        select(d, Table::Cycles, Selection::Latest { count }).await?
    } else if let Some(start) = b.num("start")? {
        let s = span(start, b.num("end")?, MAX_SPAN, "start and end", || {
            format!("Exceed maximum limit of {MAX_SPAN} cycles")
        })?;
        let sel = Selection::InCycles {
            start: s.from,
            end: s.to,
            skip: 0,
            limit: u64::MAX,
        };
        select(d, Table::Cycles, sel).await?
    } else {
        return Err(ApiError::no_selector("cycle"));
    };
    Ok(Reply::one(history::CYCLES.rows, rows))
}

/// `/receipt` and `/originalTx`.
async fn keyed(d: &Distributor, v: &Value, table: Table) -> Result<Reply, ApiError> {
    let b = Body::check(
        v,
        &[
            ("count", N),
            ("start", N),
            ("end", N),
            ("startCycle", N),
            ("endCycle", N),
            ("type", S),
            ("page", N),
            ("txId", S),
            ("txIdList", S),
        ],
    )?;
    // The reply's list key, the id column and the tally's count key, from the keyed types.
    fn names<T: KeyedRow>() -> (&'static str, &'static str, &'static str) {
        (T::LIST, T::ID, T::TALLY)
    }
    let ((key, id_column, tally_key), noun) = match table {
        Table::Receipts => (names::<Receipt>(), "receipts"),
        _ => (names::<OriginalTxData>(), "original transactions"),
    };
    let too_many = || format!("Exceed maximum limit of {PAGE_SIZE} {noun}");
    let rows = if let Some(c) = b.truthy_num("count")? {
        let count = count(c, MAX_SPAN)?;
        select(d, table, Selection::Latest { count }).await?
    } else if let Some(id) = b.truthy_str("txId") {
        check_tx_id(id, "")?;
        lookup(d, table, id_column, vec![id.to_owned()]).await?
    } else if let Some(list) = b.truthy_str("txIdList") {
        let ids = tx_id_list(list, too_many)?;
        lookup(d, table, id_column, ids).await?
    } else if let Some(start) = b.num("start")? {
        let s = span(
            start,
            b.num("end")?,
            PAGE_SIZE as u64,
            "start and end",
            too_many,
        )?;
        let sel = Selection::Offset {
            skip: s.from,
            limit: s.rows(),
        };
        select(d, table, sel).await?
    } else if let Some(start) = b.num("startCycle")? {
        let s = span(
            start,
            b.num("endCycle")?,
            MAX_SPAN,
            "startCycle and endCycle",
            || format!("Exceed maximum limit of {MAX_SPAN} cycles"),
        )?;
        match b.truthy_str("type") {
            Some("tally") => {
                let tally = with_db(d, move |db| db.history_tally(table, s.from, s.to)).await?;
                let tally: Vec<Value> = tally
                    .into_iter()
                    .map(|c| json!({"cycle": c.cycle, tally_key: c.count}))
                    .collect();
                Value::from(tally).into()
            }
            Some("count") => {
                let range = Some((s.from, s.to));
                Value::from(with_db(d, move |db| db.history_count(table, range)).await?).into()
            }
            _ => {
                let skip = page_skip(b.num("page")?, PAGE_SIZE as u64)?;
                let sel = Selection::InCycles {
                    start: s.from,
                    end: s.to,
                    skip,
                    limit: PAGE_SIZE as u64,
                };
                select(d, table, sel).await?
            }
        }
    } else {
        Value::Array(Vec::new()).into()
    };
    Ok(Reply::one(key, rows))
}

/// `/account` and `/transaction`.
async fn rows(d: &Distributor, v: &Value, route: Route) -> Result<Reply, ApiError> {
    let (table, key, total_key, noun) = if route == Route::Account {
        (Table::Accounts, "accounts", "totalAccounts", "accounts")
    } else {
        (
            Table::Transactions,
            "transactions",
            "totalTransactions",
            "transactions",
        )
    };
    let mut fields = vec![
        ("count", N),
        ("start", N),
        ("end", N),
        ("startCycle", N),
        ("endCycle", N),
        ("page", N),
    ];
    let ids: &[&'static str] = if route == Route::Account {
        &["accountId"]
    } else {
        &["txId", "appReceiptId"]
    };
    fields.extend(ids.iter().map(|id| (*id, S)));
    let b = Body::check(v, &fields)?;
    let max = ROW_PAGE_SIZE as u64;
    if let Some(c) = b.truthy_num("count")? {
        let count = count(c, max)?;
        let rows = select(d, table, Selection::Latest { count }).await?;
        return Ok(Reply::one(key, rows));
    }
    if let Some(start) = b.num("start")? {
        let s = span(start, b.num("end")?, max, "start and end", || {
            format!("Exceed maximum limit of {max} {noun}")
        })?;
        let sel = Selection::Offset {
            skip: s.from,
            limit: s.rows(),
        };
        return Ok(Reply::one(key, select(d, table, sel).await?));
    }
    if let Some(start) = b.num("startCycle")? {
        let s = span(
            start,
            b.num("endCycle")?,
            MAX_SPAN,
            "startCycle and endCycle",
            || format!("Exceed maximum limit of {MAX_SPAN} cycles to query {noun} Count"),
        )?;
        let page = b.truthy_num("page")?;
        let skip = page.map(|p| page_skip(Some(p), max)).transpose()?;
        let range = Some((s.from, s.to));
        let (total, rows) = with_db(d, move |db| {
            let total = db.history_count(table, range)?;
            let rows = match skip {
                Some(skip) => {
                    let sel = Selection::InCycles {
                        start: s.from,
                        end: s.to,
                        skip,
                        limit: max,
                    };
                    let mut rows = JsonRows::new();
                    db.history_json(table, sel, &mut rows)?;
                    Some(rows.finish())
                }
                None => None,
            };
            Ok((total, rows))
        })
        .await?;
        let reply = Reply::one(total_key, Value::from(total));
        return Ok(match rows {
            Some(rows) => reply.with(key, Part::Json(rows)),
            None => reply,
        });
    }
    for id in ids {
        if let Some(value) = b.truthy_str(id) {
            let rows = lookup(d, table, id, vec![value.to_owned()]).await?;
            return Ok(Reply::one(key, rows));
        }
    }
    // The original says "account" for both routes.
    Err(ApiError::no_selector("account"))
}

/// The original checks the length only (64); a lookup is exact, so other case finds nothing.
fn check_tx_id(id: &str, suffix: &str) -> Result<(), ApiError> {
    if id.chars().count() == 64 {
        Ok(())
    } else {
        Err(ApiError::bad(format!("Invalid txId {id}{suffix}")))
    }
}

/// `txIdList`: a JSON array of at most [`PAGE_SIZE`] ids of 64 characters.
fn tx_id_list(list: &str, too_many: impl Fn() -> String) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::bad(format!("Invalid txIdList {list}"));
    let parsed = firehose_core::canonical::safe_parse(list).map_err(|_| invalid())?;
    let items = parsed.as_array().ok_or_else(invalid)?;
    if items.len() > PAGE_SIZE {
        return Err(ApiError::bad(too_many()));
    }
    items
        .iter()
        .map(|id| match id.as_str() {
            Some(s) => check_tx_id(s, " in the List").map(|()| s.to_owned()),
            None => Err(ApiError::bad(format!("Invalid txId {id} in the List"))),
        })
        .collect()
}

/// The first row per id whose `column` equals it, in the order of `ids` (missing ids skipped).
async fn lookup(
    d: &Distributor,
    table: Table,
    column: &'static str,
    ids: Vec<String>,
) -> Result<Part, ApiError> {
    with_db(d, move |db| {
        let mut rows = JsonRows::new();
        for id in &ids {
            let sel = Selection::Equals { column, value: id };
            db.history_json(table, sel, &mut rows)?;
        }
        Ok(Part::Json(rows.finish()))
    })
    .await
}
