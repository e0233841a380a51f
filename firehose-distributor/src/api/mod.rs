//! The history HTTP API, answering as the original does (`../shared/spec`, section HTTP):
//! signed requests in, signed replies out, SQLite off the async threads.
//!
//! Routes (POST, JSON bodies signed by the collector): `/totalData`, `/cycleinfo`, `/receipt`,
//! `/originalTx`, `/account`, `/transaction`. Every request the original answers with data
//! gets the same data (keys, rows, order, counts); see `routes.rs` for the selectors. A refused
//! request gets a signed `{success: false, error}` with status 400 (bad request), 401 (bad
//! signature, not a subscriber) or 503 (database unavailable), where the original sends 200;
//! the three "not specified which … to show" replies are unsigned, as in the original.
//! Every refusal is logged at debug and counted by route and reason ([`Refusals`]).

pub mod request;
mod routes;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::canonical::{safe_parse, safe_stringify};
use firehose_dbstore::ArchiverDb;
use serde_json::{json, Value};

use crate::server::Distributor;

pub use crate::refusals::{Reason, Refusals};
pub use routes::Route;

/// Rows per page of `/receipt` and `/originalTx`, and their widest `start`/`end` span.
pub const PAGE_SIZE: usize = 100;
/// Largest `count` and cycle span (`endCycle - startCycle`).
pub const MAX_SPAN: u64 = 100;
/// Page size and widest span of `/account` and `/transaction`.
pub const ROW_PAGE_SIZE: usize = 1000;

/// A request that cannot be answered.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: Reason,
    message: String,
    /// Sent without a signature (the original's "not specified which … to show").
    unsigned: bool,
    /// Busy: the reply says when to try again (`Retry-After`).
    retry_after: bool,
}

impl ApiError {
    /// A malformed or out-of-range request (400).
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: Reason::BadRequest,
            message: message.into(),
            unsigned: false,
            retry_after: false,
        }
    }

    /// The same refusal with `suffix` added to its message.
    fn with_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason: Reason::Signature,
            message: message.into(),
            unsigned: false,
            retry_after: false,
        }
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: Reason::Unavailable,
            message: message.into(),
            unsigned: false,
            retry_after: false,
        }
    }

    /// The original's unsigned "not specified which `what` to show" (400).
    fn no_selector(what: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: Reason::NoSelector,
            message: format!("not specified which {what} to show"),
            unsigned: true,
            retry_after: false,
        }
    }
}

impl Distributor {
    /// Signs `v` and turns it into a JSON response.
    pub(crate) fn signed_reply(&self, status: StatusCode, mut v: Value) -> Response {
        if self.sign(&mut v).is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        json_response(status, safe_stringify(&v))
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Checks a signed request body like the original's `validateRequestData`: `sender` a
/// string, `sign` an object with string `owner` and `sig`, `owner == sender`, the allow-list
/// when it is on, then the signature. Returns the parsed object.
fn verified(d: &Distributor, body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad("body is not UTF-8"))?;
    let v = safe_parse(text).map_err(|e| ApiError::bad(format!("body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad("Invalid request data input must be object"));
    }
    let sender = v
        .get("sender")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("Invalid request data sender must be, string"))?;
    let sign = v
        .get("sign")
        .filter(|s| s.is_object())
        .ok_or_else(|| ApiError::bad("Invalid request data sign must be, object"))?;
    let owner = sign.get("owner").and_then(Value::as_str);
    if owner.is_none() || !sign.get("sig").is_some_and(Value::is_string) {
        return Err(ApiError::bad(
            "Invalid request data signature owner and sig must be strings",
        ));
    }
    if owner != Some(sender) {
        return Err(ApiError::unauthorized(
            "Data sender publicKey and sign owner key does not match",
        ));
    }
    d.verify_request(&v, sender)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    Ok(v)
}

/// Runs `f` on a pooled connection to the archiver database, off the async threads.
async fn with_db<T: Send + 'static>(
    d: &Distributor,
    f: impl FnOnce(&ArchiverDb) -> Result<T, firehose_dbstore::Error> + Send + 'static,
) -> Result<T, ApiError> {
    use crate::archive_db::DbError;
    d.db().run(f).await.map_err(|e| match e {
        // Not configured, or not there (yet): 503 with the reason; opening is retried on use.
        e @ (DbError::NotConfigured | DbError::Unavailable(_)) => {
            ApiError::unavailable(e.to_string())
        }
        DbError::Busy => ApiError {
            retry_after: true,
            ..ApiError::unavailable(DbError::Busy.to_string())
        },
        DbError::Query(_) | DbError::Task(_) => ApiError::unavailable("database query failed"),
    })
}

/// Answers `route` for a request `body`.
async fn handle(d: Arc<Distributor>, route: Route, body: Bytes) -> Response {
    let answer = async {
        let v = verified(&d, &body)?;
        routes::answer(&d, route, &v).await
    }
    .await;
    match answer {
        Ok(v) => d.signed_reply(StatusCode::OK, v),
        Err(e) => {
            tracing::debug!(route = route.path(), reason = e.reason.label(), error = %e.message, "history request refused");
            d.refusals.count(route.path(), e.reason);
            let reply = json!({"success": false, "error": e.message});
            let mut response = if e.unsigned {
                json_response(e.status, safe_stringify(&reply))
            } else {
                d.signed_reply(e.status, reply)
            };
            if e.retry_after {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
            }
            response
        }
    }
}

/// `POST /totalData`.
pub async fn total_data(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::TotalData, body).await
}

/// `POST /cycleinfo`.
pub async fn cycle_info(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::CycleInfo, body).await
}

/// `POST /receipt`.
pub async fn receipts(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::Receipt, body).await
}

/// `POST /originalTx`.
pub async fn original_txs(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::OriginalTx, body).await
}

/// `POST /account`.
pub async fn accounts(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::Account, body).await
}

/// `POST /transaction`.
pub async fn transactions(State(d): State<Arc<Distributor>>, body: Bytes) -> Response {
    handle(d, Route::Transaction, body).await
}
