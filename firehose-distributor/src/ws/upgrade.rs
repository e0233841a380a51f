//! The websocket handshake (RFC 6455 §4.2) on the distributor's HTTP port.
//!
//! axum's `WebSocketUpgrade` would hand over a socket that only takes whole messages, each
//! copied into the connection's buffer; sessions write the hub's shared frames themselves
//! ([`crate::ws::socket`]), so the upgrade is taken here: the same request checks, the `101`
//! answer with tungstenite's accept key, then hyper's upgraded connection.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The connection a session runs on once upgraded.
pub type Connection = TokioIo<Upgraded>;

/// A valid websocket upgrade request (HTTP/1.1 `GET` with `Connection: upgrade`,
/// `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a key).
#[derive(Debug)]
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// The request is not a websocket upgrade (the route answers it as plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotWebsocket;

impl IntoResponse for NotWebsocket {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, "not a websocket upgrade").into_response()
    }
}

/// Whether `name`'s comma-separated values include `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotWebsocket;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NotWebsocket> {
        let h = &parts.headers;
        let valid = parts.method == Method::GET
            && has_token(h, header::CONNECTION, "upgrade")
            && has_token(h, header::UPGRADE, "websocket")
            && h.get(header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v.as_bytes() == b"13");
        let key = h.get(header::SEC_WEBSOCKET_KEY).filter(|_| valid).cloned();
        let key = key.ok_or(NotWebsocket)?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or(NotWebsocket)?;
        Ok(Self { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `session` on the connection once hyper has
    /// handed it over (nothing runs if the client goes away first).
    pub fn on_upgrade<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => session(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "websocket upgrade did not complete"),
            }
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, "upgrade"),
                (header::UPGRADE, "websocket"),
                (header::SEC_WEBSOCKET_ACCEPT, accept.as_str()),
            ],
        )
            .into_response()
    }
}
