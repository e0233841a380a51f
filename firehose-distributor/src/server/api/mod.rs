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

mod error;
mod reply;
pub mod request;
mod routes;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_core::canonical::{safe_parse, safe_stringify};
use firehose_core::message::sign_canonical_object;
use serde_json::{json, Value};

use crate::server::Distributor;

pub use crate::http::refusals::{Reason, Refusals};
use error::json_response;
pub use error::ApiError;
pub use request::{MAX_SPAN, PAGE_SIZE, ROW_PAGE_SIZE};
pub use routes::Route;

impl Distributor {
    /// Signs `v` and turns it into a JSON response.
    pub(crate) fn signed_reply(&self, status: StatusCode, mut v: Value) -> Response {
        if self.sign(&mut v).is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        json_response(status, safe_stringify(&v))
    }
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

/// Answers `route` for a request `body`.
async fn handle(d: Arc<Distributor>, route: Route, body: Bytes) -> Response {
    let answer = async {
        let v = verified(&d, &body)?;
        routes::answer(&d, route, &v).await
    }
    .await;
    match answer {
        Ok(reply) => {
            let body = sign_canonical_object(&d.crypto, &d.keys, reply.into_canonical());
            json_response(StatusCode::OK, body)
        }
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
