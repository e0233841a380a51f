//! A refused history request ([`ApiError`]), and the database's errors turned into
//! refusals ([`with_db`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use firehose_dbstore::ArchiverDb;

use crate::backfill::archive_db::DbError;
use crate::http::refusals::Reason;
use crate::server::Distributor;

/// A request that cannot be answered.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) reason: Reason,
    pub(super) message: String,
    /// Sent without a signature (the original's "not specified which … to show").
    pub(super) unsigned: bool,
    /// Busy: the reply says when to try again (`Retry-After`).
    pub(super) retry_after: bool,
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
    pub(super) fn with_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    pub(super) fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason: Reason::Signature,
            message: message.into(),
            unsigned: false,
            retry_after: false,
        }
    }

    pub(super) fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: Reason::Unavailable,
            message: message.into(),
            unsigned: false,
            retry_after: false,
        }
    }

    /// The original's unsigned "not specified which `what` to show" (400).
    pub(super) fn no_selector(what: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: Reason::NoSelector,
            message: format!("not specified which {what} to show"),
            unsigned: true,
            retry_after: false,
        }
    }
}

/// Runs `f` on a pooled connection to the archiver database, off the async threads.
pub(super) async fn with_db<T: Send + 'static>(
    d: &Distributor,
    f: impl FnOnce(&ArchiverDb) -> Result<T, firehose_dbstore::Error> + Send + 'static,
) -> Result<T, ApiError> {
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

/// A JSON response with `body` as it is.
pub(super) fn json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}
