//! # firehose-tcpq
//!
//! How many of the bytes written to a TCP socket the peer's TCP has not acknowledged yet:
//! Linux's `SIOCOUTQ` (the send queue: written but not sent, plus sent but not acknowledged).
//!
//! The distributor uses it to count a message as delivered only once the collector's kernel
//! has acknowledged its last byte: `bytes written - unacknowledged(fd)`.
//!
//! This is the workspace's one crate with `unsafe` code: a single `ioctl` that writes one
//! `int` into a local variable. The rest of the workspace forbids `unsafe`.
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
//! let (_server, _) = listener.accept().unwrap();
//! client.write_all(b"hello").unwrap();
//! // Loopback acknowledges at once; the value is at most what was written.
//! assert!(firehose_tcpq::unacknowledged(client.as_raw_fd()).unwrap() <= 5);
//! ```

use std::os::fd::RawFd;

/// Bytes written to the TCP socket `fd` that its peer has not acknowledged yet (Linux
/// `SIOCOUTQ`; other systems: an `Unsupported` error).
///
/// `fd` must be a TCP socket the caller keeps open for the duration of the call (a closed
/// and reused descriptor gives another socket's figure or an error, never undefined
/// behaviour: the call writes only to a local integer).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
pub fn unacknowledged(fd: RawFd) -> std::io::Result<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (== SIOCOUTQ) writes exactly one `int` through the pointer, which
    // points at `queued`, alive and writable for the whole call. A descriptor that is not a
    // socket makes the call fail with ENOTTY; nothing else is read or written.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    u64::try_from(queued).map_err(|_| std::io::Error::other("negative send queue"))
}

/// Not available on this system: always an `Unsupported` error (callers fall back to a
/// conservative rule).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn unacknowledged(_fd: RawFd) -> std::io::Result<u64> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// A peer that never reads: once its receive window is full, what we write stays in our
    /// send queue, and the figure says how much.
    #[test]
    fn counts_what_a_peer_that_does_not_read_leaves_unacknowledged() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0u64;
        // Write until the kernel takes no more (the peer's window and our buffer are full).
        loop {
            match client.write(&chunk) {
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let queued = unacknowledged(client.as_raw_fd()).unwrap();
        assert!(
            queued > 0,
            "nothing queued after {written} bytes to a peer that does not read"
        );
        assert!(queued <= written);
        drop(server);
    }

    #[test]
    fn a_descriptor_that_is_not_a_socket_is_an_error() {
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(unacknowledged(f.as_raw_fd()).is_err());
    }
}
