//! Slow and idle sockets (slowloris): hundreds of connections that send a request's head a
//! byte at a time, or nothing, or a body that never ends. The server closes them (header and
//! request timeouts, a cap on connections not yet sessions), and a collector connected
//! meanwhile gets every entry the archiver writes, through log rotations.

use firehose_testkit as common;

use std::time::Duration;

use common::run::start;
use firehose_client::{Client, ClientConfig};
use firehose_core::crypto::KeyPair;
use firehose_core::records::Record;
use firehose_dbstore::fixture::FixtureSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the server closes the socket; `true` if it did within `limit`.
async fn closed_by_server(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a 408 or similar before the close
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sockets_are_closed_and_cost_a_collector_nothing() {
    // Both ends of 450 sockets live in this process: what the binary does at start.
    firehose_distributor::http::listener::raise_fd_limit();
    let spec = FixtureSpec {
        receipts_per_cycle: 20,
        txs_per_cycle: 5,
        receipt_bytes: 512,
        ..FixtureSpec::default()
    };
    let mut run = start(spec, 100, |c| {
        c.header_read_timeout_ms = 500;
        c.max_pending_connections = 100;
    })
    .await;
    let healthy = ClientConfig::new(&run.url, KeyPair::from_seed([2; 32]), run.d.public_key());
    let mut sub = Client::connect(&healthy).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    let addr = run.url.trim_start_matches("ws://").to_owned();
    // 300 slow heads, 100 idle sockets, 50 chunked bodies that never end.
    let mut slow = Vec::new();
    for i in 0..450 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i >= 400 {
            let head = "POST /totalData HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";
            s.write_all(head.as_bytes()).await.unwrap();
        }
        slow.push((i, s));
    }
    let drip = tokio::spawn(async move {
        // A byte of a request head every 100 ms on the first 300.
        let head = b"GET /?data=x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
        let mut open = 0;
        for round in 0..20 {
            open = 0;
            for (i, s) in slow.iter_mut() {
                if *i < 300 {
                    let b = head[round % head.len()];
                    if s.write_all(&[b]).await.is_ok() {
                        open += 1;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut all_closed = true;
        for (_, s) in slow.iter_mut() {
            all_closed &= closed_by_server(s, Duration::from_secs(40)).await;
        }
        (open, all_closed)
    });

    // The archiver writes on (log rotations every 100 receipts).
    let mut written: Vec<Record> = Vec::new();
    for _ in 0..30 {
        written.extend(run.sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::receive_all(&mut sub, &written, "collector during the slowloris").await;
    let (still_open_while_dripping, all_closed) = drip.await.unwrap();
    assert!(
        all_closed,
        "the server closes every slow, idle or endless socket"
    );
    assert!(
        still_open_while_dripping < 300,
        "slow heads are cut off by the header timeout ({still_open_while_dripping} of 300 still open after 2 s)"
    );
    let metrics = common::get(&run.url, "/metrics").await;
    assert!(
        !metrics.contains("firehose_distributor_connections_refused_total 0\n"),
        "over the pending cap, connections are closed at once:\n{metrics}"
    );
    // New subscriptions and requests work again.
    let again = ClientConfig::new(&run.url, KeyPair::from_seed([3; 32]), run.d.public_key());
    assert!(Client::connect(&again).await.is_ok());
}

/// Opens `n` sockets from `from` (another loopback address) that never send a byte.
async fn idle_sockets(from: &str, to: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        out.push(s.connect(to.parse().unwrap()).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_lock_nobody_out_and_are_closed() {
    firehose_distributor::http::listener::raise_fd_limit();
    let run = start(common::run::spec(256), 100, |c| {
        c.header_read_timeout_ms = 1_500;
        c.max_pending_connections = 1024;
        c.max_pending_per_address = 64;
    })
    .await;
    let addr = run.url.trim_start_matches("ws://").to_owned();
    // 1030 sockets from 127.0.0.2 that never send a byte: more than the whole pending table.
    let mut idle = idle_sockets("127.0.0.2", &addr, 1030).await;
    // Everyone else (127.0.0.1) is served at once: health checks, history, subscriptions.
    for _ in 0..20 {
        let alive =
            tokio::time::timeout(Duration::from_secs(1), common::get(&run.url, "/is-alive")).await;
        assert!(
            alive.is_ok(),
            "/is-alive answers while idle sockets are open"
        );
    }
    for seed in 10..20u8 {
        let c = ClientConfig::new(&run.url, KeyPair::from_seed([seed; 32]), run.d.public_key());
        let sub = tokio::time::timeout(Duration::from_secs(2), Client::connect(&c)).await;
        assert!(
            matches!(sub, Ok(Ok(_))),
            "a subscription succeeds while idle sockets are open"
        );
    }
    // The idle sockets are all closed: those over the address's cap at once, the rest when
    // the header-read timeout runs out from their accept.
    let mut open = 0;
    for s in idle.iter_mut() {
        if !closed_by_server(s, Duration::from_secs(5)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "idle sockets still open after the header timeout");
    let metrics = common::get(&run.url, "/metrics").await;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert_eq!(
        value("firehose_distributor_connections_idle_closed_total "),
        64
    );
    assert_eq!(
        value("firehose_distributor_connections_refused_per_address_total "),
        1030 - 64
    );
}
