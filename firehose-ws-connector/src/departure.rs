//! Telling that a peer has gone without reading what it sent, and refusing an oversized
//! message so that the peer hears why.
//!
//! A connection whose block waits for the output reads one more message, then nothing more
//! (what it would read would have to be held in memory). Its peer's departure is still seen:
//! a second handle on the same socket ([`watch_of`]) is told by the kernel when the peer's FIN
//! or RST arrives, however much unread data lies before it ([`departed`]).
//!
//! Non-guarantee: a peer that sent more than our receive window holds before leaving cannot
//! send its FIN until the window opens; its departure is seen when the connector reads again.

use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long an oversized message is read and discarded after the 1009 close frame, so that a
/// peer still writing it gets to read the close frame instead of a reset.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// A second handle on `stream`'s socket (a duplicated descriptor), to watch for the peer's
/// departure; `None` if it cannot be made.
pub fn watch_of(stream: &TcpStream) -> Option<TcpStream> {
    use std::os::fd::AsFd;
    let fd = stream.as_fd().try_clone_to_owned().ok()?;
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true).ok()?;
    TcpStream::from_std(std).ok()
}

/// Completes when the peer of `watch` has closed its side or reset the connection (never for
/// `None`). Reads nothing.
pub async fn departed(watch: Option<&TcpStream>) {
    let Some(w) = watch else {
        return std::future::pending().await;
    };
    loop {
        match w.ready(Interest::READABLE).await {
            Ok(r) if r.is_read_closed() || r.is_error() => return,
            Ok(_) => {
                // Data, not an end: forget this readiness and wait for the next event.
                let _ = w.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return,
        }
    }
}

/// Sends close code 1009 and reads and discards what the peer still sends of its message
/// (at most 4 times the largest message, for at most [`DRAIN_TIME`]), then drops the
/// connection.
pub async fn refuse_too_big<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    stream: SplitStream<WebSocketStream<S>>,
    max_message: usize,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::Size,
        reason: "message too big".into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
    let Ok(mut ws) = stream.reunite(sink) else {
        return;
    };
    let limit = u64::try_from(max_message)
        .unwrap_or(u64::MAX)
        .saturating_mul(4);
    let raw = tokio::io::AsyncReadExt::take(ws.get_mut(), limit);
    tokio::pin!(raw);
    let _ = tokio::time::timeout(
        DRAIN_TIME,
        tokio::io::copy(&mut raw, &mut tokio::io::sink()),
    )
    .await;
}
