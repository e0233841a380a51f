//! The distributor end to end on loopback: real files written like the archiver, real
//! websockets, collectors signed like Shardeum's: limits (descriptors and tasks after a
//! thousand connects, oversized requests and messages, pings, closes, plain GETs).

use firehose_testkit as common;

use common::run::{spec, start, wait_sessions};
use common::{assert_same_per_type, get};
use std::time::Duration;

use common::clients::{collector, connect_status};
use firehose_client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_messages_are_refused_and_others_unaffected() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut run = start(spec(200), 1000, |_| {}).await;
    let good = collector(60, &run.d, &run.url);
    let mut sub = Client::connect(&good).await.unwrap();
    // A subscription request of 60 KiB (the client library refuses longer URIs): a 4xx.
    let huge = format!("{}/?data={}", run.url, "7B".repeat(30 * 1024));
    let status = connect_status(&huge).await;
    assert!((400..500).contains(&status), "status {status}");
    // A collector that sends a 100 KiB message is closed with 1009 (message too big).
    let big = collector(61, &run.d, &run.url);
    let (mut ws, _) = tokio_tungstenite::connect_async(big.signed_url())
        .await
        .unwrap();
    wait_sessions(&run.d, 2).await;
    ws.send(Message::Text("x".repeat(100 * 1024).into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed");
    assert_eq!(closed, Some(1009));
    wait_sessions(&run.d, 1).await;
    // The other collector still gets everything.
    let written = run.sim.write_cycle().unwrap();
    let mut got = Vec::new();
    while got.len() < written.len() {
        let r = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push(r.record);
    }
    assert_same_per_type(&got, &written, "the collector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_closes_echoed_and_plain_gets_told_how_to_connect() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    let run = start(spec(200), 1000, |_| {}).await;
    // A plain GET (no upgrade) is answered, not refused.
    assert!(get(&run.url, "/")
        .await
        .contains("connect with a websocket"));
    // An upgrade with a websocket version other than 13 is not a websocket either.
    let status = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = run.url.trim_start_matches("ws://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(status, "200");

    let c = collector(70, &run.d, &run.url);
    let (mut ws, resp) = tokio_tungstenite::connect_async(c.signed_url())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    wait_sessions(&run.d, 1).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = next_control(&mut ws).await.expect("an answer to the ping");
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(p))) if &p[..] == b"are you there"),
        "{pong:?}"
    );
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let reply = next_control(&mut ws).await.expect("a close reply");
    assert!(
        matches!(&reply, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 4000),
        "{reply:?}"
    );
    wait_sessions(&run.d, 0).await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message that is not a record (10 s at most).
async fn next_control(
    ws: &mut Ws,
) -> Result<
    Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>,
    tokio::time::error::Elapsed,
> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await
}
