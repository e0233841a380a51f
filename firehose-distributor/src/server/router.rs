//! The HTTP routes on the distributor's one port: the websocket upgrade, the history API,
//! health, config and metrics, with CORS, body and time limits and the optional rate limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use firehose_core::protocol::history::{
    ACCOUNTS, CYCLES, ORIGINAL_TXS, RECEIPTS, TOTAL_DATA, TRANSACTIONS,
};

use crate::server::Distributor;

/// Longest time to receive and answer an HTTP request (the websocket upgrade returns at once;
/// the session runs past it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Distributor {
    /// The HTTP + websocket routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(crate::server::session::upgrade))
            .route("/health", get(|| async { "OK" }))
            .route("/is-alive", get(|| async { "OK" }))
            .route("/is-healthy", get(|| async { "OK" }))
            .route("/config", get(get_config))
            .route("/metrics", get(crate::server::metrics::metrics))
            .route(
                TOTAL_DATA,
                axum::routing::post(crate::server::api::total_data),
            )
            .route(
                CYCLES.path,
                axum::routing::post(crate::server::api::cycle_info),
            )
            .route(
                RECEIPTS.path,
                axum::routing::post(crate::server::api::receipts),
            )
            .route(
                ORIGINAL_TXS.path,
                axum::routing::post(crate::server::api::original_txs),
            )
            .route(
                ACCOUNTS.path,
                axum::routing::post(crate::server::api::accounts),
            )
            .route(
                TRANSACTIONS.path,
                axum::routing::post(crate::server::api::transactions),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                self.bodies.clone(),
                crate::http::body_budget::reserve,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                rate_limit,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(
                crate::http::body_budget::MAX_BODY,
            ))
            // A request body that never ends (slow chunks) is cut off.
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(tower_http::cors::CorsLayer::permissive())
            .with_state(self.clone())
    }
}

/// Applies `RATE_LIMIT` per client address (loopback exempt) to the HTTP routes.
async fn rate_limit(
    State(d): State<Arc<Distributor>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if d.limiter.allow(peer.ip(), std::time::Instant::now()) {
        next.run(req).await
    } else {
        let route = [
            crate::server::api::Route::TotalData,
            crate::server::api::Route::CycleInfo,
            crate::server::api::Route::Receipt,
            crate::server::api::Route::OriginalTx,
            crate::server::api::Route::Account,
            crate::server::api::Route::Transaction,
        ]
        .into_iter()
        .map(crate::server::api::Route::path)
        .find(|p| *p == req.uri().path())
        .unwrap_or("other");
        tracing::debug!(route, %peer, "request refused: over RATE_LIMIT");
        d.refusals
            .count(route, crate::server::api::Reason::RateLimited);
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response()
    }
}

async fn get_config(State(d): State<Arc<Distributor>>) -> Response {
    let c = d.config();
    let mut v = serde_json::json!({"config": {
        "DISTRIBUTOR_IP": c.ip,
        "DISTRIBUTOR_PORT": c.port,
        "DISTRIBUTOR_PUBLIC_KEY": d.keys.public_key().to_hex(),
        "limitToSubscribersOnly": c.limit_to_subscribers_only,
        "subscribers": c.subscribers,
    }});
    drop(c);
    if d.crypto.sign_obj(&mut v, &d.keys).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        firehose_core::canonical::safe_stringify(&v),
    )
        .into_response()
}
