//! Request bodies are buffered whole (at most 1 MiB each) before a history request is
//! answered; [`BodyBudget`] bounds how many bytes all requests together may buffer, so that a
//! burst of large bodies waits in the kernel's socket buffers instead of parking hundreds of
//! MB in the process.
//!
//! A request reserves its `Content-Length` (1 MiB when it has none) before its body is read
//! and gives it back with its answer. One that cannot reserve within [`BODY_WAIT`] gets `503`
//! with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

/// The largest request body (bytes).
pub const MAX_BODY: usize = 1 << 20;
/// Bytes of request bodies buffered at once, in all.
pub const BODY_BUDGET: usize = 32 << 20;
/// Longest wait for room in the budget.
pub const BODY_WAIT: Duration = Duration::from_secs(10);

/// Units of the budget's semaphore (KiB).
const UNIT: usize = 1024;

/// The bytes of request bodies buffered at once.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl Default for BodyBudget {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(BODY_BUDGET / UNIT)))
    }
}

impl BodyBudget {
    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.0.available_permits() * UNIT
    }
}

/// Reserves room for the request's body before it is read; 503 when none comes in time.
pub async fn reserve(State(budget): State<BodyBudget>, req: Request, next: Next) -> Response {
    // A GET (the upgrade, health, metrics) has no body to hold.
    if req.method() == axum::http::Method::GET {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = declared.unwrap_or(MAX_BODY).clamp(1, MAX_BODY);
    let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
    let permit = tokio::time::timeout(BODY_WAIT, budget.0.clone().acquire_many_owned(units)).await;
    let Ok(Ok(_permit)) = permit else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            "too many request bodies at once; retry shortly",
        )
            .into_response();
    };
    next.run(req).await
}
