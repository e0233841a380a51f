//! Accepting connections without letting sockets starve the rest of the process.
//!
//! * Every connection needs a file descriptor; the accept loop takes one from a budget first
//!   (the `RLIMIT_NOFILE` soft limit less what is open at start and a reserve for the log
//!   readers, databases and back-fills), so when sockets pile up it stops accepting (the
//!   kernel's backlog holds the rest) instead of failing `accept`, or a log reader failing to
//!   open its next file.
//! * Connections that have not become a websocket session yet (HTTP requests, upgrades in
//!   progress) are capped, in all and per source address ([`PeerKey`]: an IPv4 address or an
//!   IPv6 /64), so that no single peer can fill the table; one over a cap is closed at once.
//!   The host itself (`127.0.0.1`, `::1`) is not capped per address: a local reverse proxy
//!   carries every client's connections, and health checks come from there.
//! * A connection must send its first byte within the header-read timeout of `accept`
//!   (hyper's own header timer starts only at the first byte), and hyper runs with a timer, so
//!   a socket that sends a request's head slowly (slowloris), or nothing at all, is closed
//!   after it; request bodies are bounded in time by a timeout layer on the routes.
//! * `accept` errors (EMFILE and the like) back off instead of spinning, logged once a second.

use crate::metrics::Counter;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::http::peers::PeerKey;
use crate::http::peers::PeerSlots;

/// How the listener protects the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive a request's head (and to wait for the next one on an idle
    /// keep-alive connection).
    pub header_read_timeout: Duration,
    /// Connections not yet upgraded to a websocket session, at once.
    pub max_pending: usize,
    /// Of those, from one source address ([`PeerKey`]).
    pub max_pending_per_peer: usize,
    /// File descriptors never handed to sockets.
    pub fd_reserve: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_pending: 1024,
            max_pending_per_peer: 256,
            fd_reserve: 256,
        }
    }
}

/// Largest request head buffered (hyper answers a longer one with 431). A subscription's
/// `?data=` with a resume point is about 1 KiB.
pub const MAX_HEAD_BYTES: usize = 32 << 10;

/// What the listener refused, for `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections closed at once because too many were pending.
    pub refused_pending: Counter,
    /// Connections closed at once because too many were pending from their address.
    pub refused_peer: Counter,
    /// Connections closed because they sent nothing within the header-read timeout.
    pub idle_closed: Counter,
    /// `accept` failures (each followed by a back-off).
    pub accept_errors: Counter,
}

/// Raises `RLIMIT_NOFILE` to its hard limit; returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// File descriptors open now (Linux; 0 where unknown).
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Connections the descriptor budget allows: the soft limit, less what is open now and the
/// reserve (at least 16).
pub fn connection_budget(limits: &Limits) -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let budget = soft
        .saturating_sub(open_fds())
        .saturating_sub(limits.fd_reserve);
    usize::try_from(budget.max(16)).unwrap_or(usize::MAX)
}

/// The descriptor of the connection a request came on (a request extension): a websocket
/// session asks it how much of what it wrote the peer has not acknowledged
/// ([`firehose_tcpq::unacknowledged`]). Valid only while the connection is: the session
/// that owns the upgraded connection is the only user.
#[derive(Debug, Clone, Copy)]
pub struct SocketFd(pub std::os::fd::RawFd);

/// A socket that gives its descriptor budget back when it closes (it follows the connection
/// into a websocket session).
struct Counted {
    inner: TcpStream,
    _fd: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Waits until the socket has a byte to read (or its end) within `limit`; `false` when it
/// sends nothing in time or fails.
async fn first_byte_within(socket: &Counted, limit: Duration) -> bool {
    let mut one = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, socket.inner.peek(&mut one)).await,
        Ok(Ok(1))
    )
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting and lets
/// HTTP connections finish (bounded by their timeouts). Websocket sessions are the caller's.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ListenerStats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let fds = Arc::new(Semaphore::new(connection_budget(&limits)));
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    let peers = PeerSlots::new(limits.max_pending_per_peer.max(1));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A request's head (and each read of its body) in at most this much: a burst of
        // unfinished heads cannot park hundreds of KB a connection.
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder.http1_only());
    let mut last_error_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let fd = tokio::select! {
            p = fds.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    stats.accept_errors.inc();
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accept failed; backing off");
                        last_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The host itself (127.0.0.1, ::1: health checks, a local reverse proxy) is not
        // capped per address; every other address is, other loopback addresses included.
        let peer_slot = if PeerKey::is_host_itself(peer.ip()) {
            None
        } else if let Some(slot) = peers.try_acquire(PeerKey::of(peer.ip())) {
            Some(slot)
        } else {
            stats.refused_peer.inc();
            tracing::debug!(%peer, "too many connections pending from this address; closed");
            continue;
        };
        let Ok(pending_slot) = pending.clone().try_acquire_owned() else {
            stats.refused_pending.inc();
            tracing::debug!(%peer, "too many connections pending; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let socket_fd = SocketFd(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let io = TokioIo::new(Counted {
            inner: stream,
            _fd: fd,
        });
        let router = router.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut router = router.clone();
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(socket_fd);
            async move { tower_service::Service::call(&mut router, req).await }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = limits.header_read_timeout;
        let stats = stats.clone();
        tokio::spawn(async move {
            // The slots are held until the connection ends or is upgraded (hyper then hands the
            // socket to the websocket session and this future completes).
            let _pending = (pending_slot, peer_slot);
            if !first_byte_within(io.inner(), first_byte).await {
                stats.idle_closed.inc();
                tracing::debug!(%peer, "nothing received within the header timeout; closed");
                return;
            }
            let conn = builder.serve_connection_with_upgrades(io, svc).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    // HTTP connections finish what they are doing; each is bounded by its timeouts.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Pending connections the listener queues (the kernel caps it at `net.core.somaxconn`).
/// Tokio's default of 128 overflows when a thousand collectors reconnect at once (after a
/// restart): the dropped SYNs are retried only after a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`host:port`) for [`crate::Distributor::serve`] with [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr}: no address"))
    }))
}
