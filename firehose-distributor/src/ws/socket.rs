//! A collector's websocket after the upgrade, in two halves: tungstenite parses what the
//! collector sends ([`Incoming`]); what the server sends is prebuilt frames
//! ([`crate::ws::frames`]) written straight to the socket by a [`FrameWriter`], many per system
//! call, without copying them.
//!
//! The session answers pings and close frames itself (with [`crate::ws::frames::pong`] and
//! [`crate::ws::frames::close_reply`]), so the reading half never writes: the replies tungstenite
//! would queue are dropped, and nothing can interleave with a frame being written.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// Frames handed to one vectored write at most.
pub const MAX_IOV: usize = 128;

/// Queue slots a writer keeps once it has written everything.
const IDLE_QUEUE: usize = 16;

/// What the collector sends, as tungstenite messages (a `futures::Stream`).
pub type Incoming<R> = WebSocketStream<ReadOnly<R>>;

/// Splits an upgraded connection: the messages the collector sends, and the writer of the
/// server's frames.
pub async fn split<S>(
    io: S,
    config: WebSocketConfig,
) -> (
    Incoming<tokio::io::ReadHalf<S>>,
    FrameWriter<tokio::io::WriteHalf<S>>,
)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (r, w) = tokio::io::split(io);
    let incoming = WebSocketStream::from_raw_socket(ReadOnly(r), Role::Server, Some(config)).await;
    (incoming, FrameWriter::new(w))
}

/// The reading half under tungstenite: reads pass through, writes are accepted and dropped
/// (see the module docs).
#[derive(Debug)]
pub struct ReadOnly<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes queued frames to a socket in order, up to [`MAX_IOV`] frames per vectored write.
///
/// The queue holds shared [`Bytes`] (no copies). A [`flush`](Self::flush) cancelled part-way
/// (a deadline, a close) keeps its place: the next one goes on from the same byte, so frames
/// are never cut or interleaved.
#[derive(Debug)]
pub struct FrameWriter<W> {
    io: W,
    queue: VecDeque<Bytes>,
    /// Bytes written to `io` so far (every frame, whoever queued it).
    written: u64,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer on `io` with nothing queued.
    pub fn new(io: W) -> Self {
        Self {
            io,
            queue: VecDeque::new(),
            written: 0,
        }
    }

    /// Queues a finished frame.
    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.queue.push_back(frame);
        }
    }

    /// Bytes written to the socket so far (all frames).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Frames (or what is left of one) not written yet.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Writes everything queued, then flushes the socket.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        while !self.queue.is_empty() {
            // The slices live only while polled: kept across the await, they would make
            // every session's future 2 KiB larger.
            let written = std::future::poll_fn(|cx| {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                for (slot, frame) in slices.iter_mut().zip(&self.queue) {
                    *slot = IoSlice::new(frame);
                    n += 1;
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            })
            .await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.consume(written);
        }
        // A burst grew the queue: give the memory back (10,000 sessions would keep ~4 KiB
        // each otherwise).
        if self.queue.capacity() > IDLE_QUEUE {
            self.queue = VecDeque::new();
        }
        self.io.flush().await
    }

    /// Queues `frame` and writes everything queued.
    pub async fn send(&mut self, frame: Bytes) -> std::io::Result<()> {
        self.push(frame);
        self.flush().await
    }

    /// Drops `n` written bytes from the front of the queue.
    fn consume(&mut self, mut n: usize) {
        self.written += n as u64;
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.queue.pop_front();
        }
    }
}

/// The server's half of an upgraded session's socket.
pub type SessionWriter = FrameWriter<tokio::io::WriteHalf<crate::ws::upgrade::Connection>>;

/// How long a close frame may take to go out before the socket is dropped anyway.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Queues a close frame and writes what is queued, for at most [`CLOSE_WAIT`].
pub async fn close_with(out: &mut SessionWriter, code: u16, reason: &str) {
    let frame = crate::ws::frames::close(code, reason);
    let _ = tokio::time::timeout(CLOSE_WAIT, out.send(frame)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    /// Frames written through a pipe far smaller than they are (many partial writes, some
    /// cancelled) arrive whole and in order at a real websocket client.
    #[tokio::test]
    async fn frames_arrive_whole_and_in_order_through_partial_writes() {
        let (server, client) = tokio::io::duplex(1000);
        let (_incoming, mut writer) = split(server, WebSocketConfig::default()).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let texts: Vec<String> = (0..200)
            .map(|i| format!("{i}:{}", "x".repeat(i * 37 % 5000)))
            .collect();
        let shared: Vec<Bytes> = texts.iter().map(|t| crate::ws::frames::text(t)).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 200 {
                match client.next().await {
                    Some(Ok(Message::Text(t))) => got.push(t.to_string()),
                    other => panic!("unexpected {other:?}"),
                }
                // Read slowly now and then, so the writer's flushes block part-way.
                if got.len() % 50 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            got
        });
        for chunk in shared.chunks(30) {
            for f in chunk {
                writer.push(f.clone());
            }
            // A flush cut short by a timeout goes on from the same byte next time.
            let _ =
                tokio::time::timeout(std::time::Duration::from_micros(50), writer.flush()).await;
        }
        writer.flush().await.unwrap();
        assert_eq!(writer.queued(), 0);
        assert_eq!(reader.await.unwrap(), texts);
    }

    /// What the collector sends is read; tungstenite's own replies never reach the socket.
    #[tokio::test]
    async fn the_reading_half_never_writes() {
        use futures::SinkExt;
        let (server, client) = tokio::io::duplex(1 << 16);
        let (mut incoming, _writer) = split(server, WebSocketConfig::default()).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        client
            .send(Message::Ping(b"p".to_vec().into()))
            .await
            .unwrap();
        client.send(Message::Text("hi".into())).await.unwrap();
        assert!(matches!(incoming.next().await, Some(Ok(Message::Ping(_)))));
        assert!(matches!(incoming.next().await, Some(Ok(Message::Text(t))) if t == "hi"));
        // tungstenite queued a pong; nothing arrives unless the writer sends one.
        let nothing =
            tokio::time::timeout(std::time::Duration::from_millis(50), client.next()).await;
        assert!(nothing.is_err(), "the reading half wrote {nothing:?}");
    }
}
