//! The history HTTP API: signed requests in, signed replies out, SQLite off the async threads.
//!
//! Routes (POST, JSON bodies signed by the collector): `/totalData`, `/cycleinfo`, `/receipt`,
//! `/originalTx`, `/account`, `/transaction`. Errors are signed `{success: false, error}` with status 400 (bad request),
//! 401 (signature) or 503 (database unavailable).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::canonical::{safe_parse, safe_stringify};
use firehose_dbstore::ArchiverDb;
use serde_json::{json, Value};

use crate::server::Distributor;

/// Rows per page and the widest ranges, as in the original.
pub const PAGE_SIZE: usize = 100;
/// Largest `count` and cycle span.
pub const MAX_SPAN: u64 = 100;

/// A request that cannot be answered.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The archiver database shared by the API (queries run on the blocking pool).
pub type SharedDb = Arc<Mutex<ArchiverDb>>;

impl Distributor {
    /// Signs `v` and turns it into a JSON response.
    pub(crate) fn signed_reply(&self, status: StatusCode, mut v: Value) -> Response {
        if self.sign(&mut v).is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            safe_stringify(&v),
        )
            .into_response()
    }

    fn error_reply(&self, e: ApiError) -> Response {
        self.signed_reply(e.status, json!({"success": false, "error": e.message}))
    }
}

/// Checks a signed request body; returns the parsed object.
fn verified(d: &Distributor, body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad("body is not UTF-8"))?;
    let v = safe_parse(text).map_err(|e| ApiError::bad(format!("body is not JSON: {e}")))?;
    let sender = v
        .get("sender")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("sender is not a string"))?;
    let owner = v.pointer("/sign/owner").and_then(Value::as_str);
    let unauthorized = |m: String| ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: m,
    };
    if owner != Some(sender) {
        return Err(unauthorized("sign.owner is not the sender".into()));
    }
    d.verify_request(&v, sender).map_err(unauthorized)?;
    Ok(v)
}

fn opt_u64(v: &Value, key: &str) -> Result<Option<u64>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("{key} must be a non-negative integer"))),
    }
}

async fn with_db<T: Send + 'static>(
    d: &Distributor,
    f: impl FnOnce(&ArchiverDb) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = d.db();
    tokio::task::spawn_blocking(move || {
        // Not configured, or not there (yet): 503 with the reason; opening is retried on use.
        let db = db.get().map_err(|message| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
        })?;
        let db = db.lock().expect("db lock");
        f(&db)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?
}

fn db_err(e: firehose_dbstore::Error) -> ApiError {
    tracing::error!(error = %e, "database query failed");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "database query failed".into(),
    }
}

fn to_values<T: serde::Serialize>(rows: Vec<T>) -> Vec<Value> {
    rows.into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect()
}

/// `POST /totalData`.
pub async fn total_data(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = async {
        verified(&d, &body)?;
        with_db(&d, |db| {
            Ok(json!({
                "totalCycles": db.count_cycles().map_err(db_err)?,
                "totalAccounts": db.count_accounts().map_err(db_err)?.unwrap_or(0),
                "totalTransactions": db.count_transactions().map_err(db_err)?.unwrap_or(0),
                "totalReceipts": db.count_receipts().map_err(db_err)?,
                "totalOriginalTxs": db.count_original_txs().map_err(db_err)?,
            }))
        })
        .await
    }
    .await;
    reply(&d, r)
}

/// `POST /cycleinfo` `{start?, end?, count?}` → `{cycleInfo: [cycleRecord...]}`.
pub async fn cycle_info(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = async {
        let v = verified(&d, &body)?;
        let count = opt_u64(&v, "count")?;
        let start = opt_u64(&v, "start")?;
        let end = opt_u64(&v, "end")?;
        let rows = match (count, start, end) {
            (Some(c), _, _) => {
                if c == 0 || c > MAX_SPAN {
                    return Err(ApiError::bad(format!("count must be 1..={MAX_SPAN}")));
                }
                with_db(&d, move |db| db.latest_cycles(c as usize).map_err(db_err)).await?
            }
            (None, Some(s), e) => {
                let e = e.unwrap_or(s + MAX_SPAN - 1);
                if e < s || e - s >= MAX_SPAN {
                    return Err(ApiError::bad(format!(
                        "end must be >= start and span at most {MAX_SPAN} cycles"
                    )));
                }
                with_db(&d, move |db| {
                    db.cycles_between(s, e, MAX_SPAN as usize).map_err(db_err)
                })
                .await?
            }
            _ => return Err(ApiError::bad("give count, or start (and end)")),
        };
        Ok(json!({"cycleInfo": rows.into_iter().map(|c| c.cycle_record).collect::<Vec<_>>()}))
    }
    .await;
    reply(&d, r)
}

/// Which table a list route reads.
#[derive(Clone, Copy)]
enum Table {
    Receipts,
    OriginalTxs,
}

/// `POST /receipt`.
pub async fn receipts(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = list(&d, &body, Table::Receipts).await;
    reply(&d, r)
}

/// `POST /originalTx`.
pub async fn original_txs(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = list(&d, &body, Table::OriginalTxs).await;
    reply(&d, r)
}

async fn list(d: &Distributor, body: &[u8], table: Table) -> Result<Value, ApiError> {
    let v = verified(d, body)?;
    let key = match table {
        Table::Receipts => "receipts",
        Table::OriginalTxs => "originalTxs",
    };
    if let Some(c) = opt_u64(&v, "count")? {
        if c == 0 || c > MAX_SPAN {
            return Err(ApiError::bad(format!("count must be 1..={MAX_SPAN}")));
        }
        let rows = with_db(d, move |db| {
            Ok(match table {
                Table::Receipts => to_values(db.latest_receipts(c as usize).map_err(db_err)?),
                Table::OriginalTxs => {
                    to_values(db.latest_original_txs(c as usize).map_err(db_err)?)
                }
            })
        })
        .await?;
        return Ok(json!({ key: rows }));
    }
    if let Some(id) = v.get("txId").and_then(Value::as_str) {
        check_tx_id(id)?;
        let id = id.to_owned();
        let rows = with_db(d, move |db| lookup(db, table, &[id])).await?;
        return Ok(json!({ key: rows }));
    }
    if let Some(list) = v.get("txIdList").and_then(Value::as_str) {
        let ids: Vec<String> = serde_json::from_str(list)
            .map_err(|_| ApiError::bad("txIdList must be a JSON array of tx ids"))?;
        if ids.len() > PAGE_SIZE {
            return Err(ApiError::bad(format!("at most {PAGE_SIZE} ids")));
        }
        for id in &ids {
            check_tx_id(id)?;
        }
        let rows = with_db(d, move |db| lookup(db, table, &ids)).await?;
        return Ok(json!({ key: rows }));
    }
    if let Some(start_cycle) = opt_u64(&v, "startCycle")? {
        let end_cycle = opt_u64(&v, "endCycle")?.unwrap_or(start_cycle);
        if end_cycle < start_cycle || end_cycle - start_cycle >= MAX_SPAN {
            return Err(ApiError::bad(format!(
                "endCycle must be >= startCycle and span at most {MAX_SPAN} cycles"
            )));
        }
        let kind = v.get("type").and_then(Value::as_str).map(str::to_owned);
        let page = opt_u64(&v, "page")?.unwrap_or(1).max(1);
        return with_db(d, move |db| match kind.as_deref() {
            Some("tally") => {
                let counts = match table {
                    Table::Receipts => db.receipt_counts(start_cycle, end_cycle),
                    Table::OriginalTxs => db.original_tx_counts(start_cycle, end_cycle),
                }
                .map_err(db_err)?;
                let tally: Vec<Value> = counts
                    .into_iter()
                    .map(|c| json!({"cycle": c.cycle, key: c.count}))
                    .collect();
                Ok(json!({ key: tally }))
            }
            Some("count") => {
                let n = match table {
                    Table::Receipts => db.count_receipts_between(start_cycle, end_cycle),
                    Table::OriginalTxs => db.count_original_txs_between(start_cycle, end_cycle),
                }
                .map_err(db_err)?;
                Ok(json!({ key: n }))
            }
            None => {
                // Page N of the range in (cycle, timestamp, id) order.
                let skip = (page - 1) * PAGE_SIZE as u64;
                let rows = match table {
                    Table::Receipts => to_values(
                        db.receipts_in_cycles(start_cycle, end_cycle, skip, PAGE_SIZE)
                            .map_err(db_err)?,
                    ),
                    Table::OriginalTxs => to_values(
                        db.original_txs_in_cycles(start_cycle, end_cycle, skip, PAGE_SIZE)
                            .map_err(db_err)?,
                    ),
                };
                Ok(json!({ key: rows }))
            }
            Some(other) => Err(ApiError::bad(format!(
                "type `{other}`: expected tally or count"
            ))),
        })
        .await;
    }
    let start = opt_u64(&v, "start")?;
    let end = opt_u64(&v, "end")?;
    if let Some(s) = start {
        let e = end.unwrap_or(s + PAGE_SIZE as u64 - 1);
        if e < s || e - s >= PAGE_SIZE as u64 {
            return Err(ApiError::bad(format!(
                "end must be >= start and at most {PAGE_SIZE} rows"
            )));
        }
        let limit = (e - s + 1) as usize;
        let rows = with_db(d, move |db| {
            Ok(match table {
                Table::Receipts => to_values(db.receipts_by_offset(s, limit).map_err(db_err)?),
                Table::OriginalTxs => {
                    to_values(db.original_txs_by_offset(s, limit).map_err(db_err)?)
                }
            })
        })
        .await?;
        return Ok(json!({ key: rows }));
    }
    Err(ApiError::bad(
        "give count, txId, txIdList, startCycle (and endCycle), or start (and end)",
    ))
}

fn check_tx_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "txId `{id}` is not 64 hex characters"
        )))
    }
}

fn lookup(db: &ArchiverDb, table: Table, ids: &[String]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for id in ids {
        let row = match table {
            Table::Receipts => db
                .receipt_by_id(id)
                .map_err(db_err)?
                .and_then(|r| serde_json::to_value(r).ok()),
            Table::OriginalTxs => db
                .original_tx_by_id(id)
                .map_err(db_err)?
                .and_then(|t| serde_json::to_value(t).ok()),
        };
        out.extend(row);
    }
    Ok(out)
}

fn reply(d: &Distributor, r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => d.signed_reply(StatusCode::OK, v),
        Err(e) => d.error_reply(e),
    }
}

/// `POST /account` `{count | accountId | startCycle, endCycle?, page?, type?: "count"}` →
/// `{accounts: [...]}` (page size 1000).
pub async fn accounts(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = rows(
        &d,
        &body,
        firehose_dbstore::RowStore::Accounts,
        "accounts",
        "accountId",
    )
    .await;
    reply(&d, r)
}

/// `POST /transaction` `{count | txId | startCycle, endCycle?, page?, type?: "count"}` →
/// `{transactions: [...]}` (page size 1000).
pub async fn transactions(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    let r = rows(
        &d,
        &body,
        firehose_dbstore::RowStore::Transactions,
        "transactions",
        "txId",
    )
    .await;
    reply(&d, r)
}

/// Page size of `/account` and `/transaction`.
pub const ROW_PAGE_SIZE: usize = 1000;

async fn rows(
    d: &Distributor,
    body: &[u8],
    store: firehose_dbstore::RowStore,
    key: &'static str,
    id_field: &'static str,
) -> Result<Value, ApiError> {
    let v = verified(d, body)?;
    let missing = || ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("the archiver has no {key} database"),
    };
    if let Some(c) = opt_u64(&v, "count")? {
        if c == 0 || c > ROW_PAGE_SIZE as u64 {
            return Err(ApiError::bad(format!("count must be 1..={ROW_PAGE_SIZE}")));
        }
        let rows = with_db(d, move |db| {
            db.latest_rows(store, c as usize).map_err(db_err)
        })
        .await?
        .ok_or_else(missing)?;
        return Ok(json!({ key: rows }));
    }
    if let Some(id) = v.get(id_field).and_then(Value::as_str) {
        check_tx_id(id)?;
        let id = id.to_owned();
        let rows = with_db(d, move |db| db.row_by_id(store, &id).map_err(db_err))
            .await?
            .ok_or_else(missing)?;
        return Ok(json!({ key: rows }));
    }
    if let Some(start) = opt_u64(&v, "startCycle")? {
        let end = opt_u64(&v, "endCycle")?.unwrap_or(start);
        if end < start || end - start >= MAX_SPAN {
            return Err(ApiError::bad(format!(
                "endCycle must be >= startCycle and span at most {MAX_SPAN} cycles"
            )));
        }
        if v.get("type").and_then(Value::as_str) == Some("count") {
            let n = with_db(d, move |db| {
                db.count_rows_between(store, start, end).map_err(db_err)
            })
            .await?
            .ok_or_else(missing)?;
            return Ok(json!({ key: n }));
        }
        let page = opt_u64(&v, "page")?.unwrap_or(1).max(1);
        let rows = with_db(d, move |db| {
            db.rows_between(store, start, end, page, ROW_PAGE_SIZE)
                .map_err(db_err)
        })
        .await?
        .ok_or_else(missing)?;
        return Ok(json!({ key: rows }));
    }
    Err(ApiError::bad(format!(
        "give count, {id_field}, or startCycle (and endCycle)"
    )))
}
