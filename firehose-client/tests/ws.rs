//! The websocket client against a tiny in-test distributor (a real tokio-tungstenite server on
//! loopback): signature checks, close codes, resuming with `since`, back-off and refusals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firehose_client::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use firehose_client::tungstenite::protocol::frame::coding::CloseCode;
use firehose_client::tungstenite::protocol::CloseFrame;
use firehose_client::tungstenite::Message;
use firehose_client::{Client, ClientConfig, ClientError, ResumingClient};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::fixtures;
use firehose_core::message::encode_signed_entry;
use firehose_core::records::Record;
use firehose_core::since::Since;
use firehose_core::subscription::SignedSubscription;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;

/// What one connection of the test distributor does.
#[derive(Clone)]
enum Script {
    /// Sends these frames, then closes with this code (or keeps the socket open).
    Send(Vec<Message>, Option<u16>),
    /// Refuses the upgrade with this HTTP status.
    Refuse(u16),
}

/// Per connection: when it came and the `since` it asked for.
type Seen = Arc<Mutex<Vec<(Instant, Option<Since>)>>>;

/// A distributor that plays `scripts` in turn (the last one again for later connections).
async fn distributor(scripts: Vec<Script>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let script = scripts[n.min(scripts.len() - 1)].clone();
            let log = log.clone();
            tokio::spawn(serve(stream, script, log));
        }
    });
    (url, seen)
}

async fn serve(stream: tokio::net::TcpStream, script: Script, log: Seen) {
    let status = match &script {
        Script::Refuse(s) => Some(*s),
        Script::Send(..) => None,
    };
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let check = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let query = req.uri().query().unwrap_or("");
        let data = query.strip_prefix("data=").unwrap_or("");
        let data = percent_encoding::percent_decode_str(data)
            .decode_utf8()
            .unwrap();
        let since = SignedSubscription::parse(&data).unwrap().since().unwrap();
        log.lock().unwrap().push((Instant::now(), since));
        match status {
            None => Ok(resp),
            Some(s) => {
                let mut r = ErrorResponse::new(Some("no".into()));
                *r.status_mut() = s.try_into().unwrap();
                Err(r)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    let Script::Send(frames, close) = script else {
        return;
    };
    for f in frames {
        ws.send(f).await.unwrap();
    }
    if let Some(code) = close {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "test".into(),
        };
        let _ = ws.send(Message::Close(Some(frame))).await;
    }
    while let Some(Ok(_)) = ws.next().await {}
}

async fn distributor_with(frames: Vec<Message>, close: Option<u16>) -> (String, Seen) {
    distributor(vec![Script::Send(frames, close)]).await
}

fn signed(keys: &KeyPair, record: &Record) -> Message {
    let entry = record.to_canonical_json();
    let msg = encode_signed_entry(
        &Crypto::default(),
        keys,
        record.data_type(),
        entry.as_bytes(),
    );
    Message::Text(String::from_utf8(msg).unwrap().into())
}

#[tokio::test]
async fn only_messages_signed_by_the_distributor_key_come_out() {
    let (distributor, impostor) = (KeyPair::generate(), KeyPair::generate());
    let good = fixtures::cycle(1, 1_700_000_000_000);
    let second = signed(&distributor, &fixtures::cycle(2, 1_700_000_060_000));
    let tampered = second
        .to_text()
        .unwrap()
        .replacen("\"counter\":2", "\"counter\":3", 1);
    assert_ne!(tampered, second.to_text().unwrap());
    let frames = vec![
        signed(&impostor, &fixtures::cycle(9, 1_700_000_000_000)),
        Message::Text(tampered.into()),
        Message::Text("not json".into()),
        signed(&distributor, &good),
    ];
    let (url, _) = distributor_with(frames, None).await;
    let cfg = ClientConfig::new(&url, KeyPair::generate(), distributor.public_key());
    let mut sub = Client::connect(&cfg).await.unwrap();
    match sub.next().await.unwrap() {
        Err(ClientError::BadMessage(firehose_core::Error::BadSignature { owner })) => {
            assert_eq!(owner, impostor.public_key().to_hex())
        }
        other => panic!("an impostor's message: {other:?}"),
    }
    let bad =
        |r: Option<Result<_, ClientError>>| matches!(r, Some(Err(ClientError::BadMessage(_))));
    assert!(bad(sub.next().await), "a tampered message");
    assert!(bad(sub.next().await), "not JSON");
    // The stream goes on after bad messages.
    assert_eq!(sub.next().await.unwrap().unwrap().record, good);
}

#[tokio::test]
async fn a_close_frame_comes_out_with_its_code() {
    for code in [
        firehose_core::protocol::CLOSE_SLOW_CONSUMER,
        firehose_core::protocol::CLOSE_RESUME_LATER,
        firehose_core::protocol::CLOSE_GOING_AWAY,
    ] {
        let keys = KeyPair::generate();
        let frames = vec![signed(&keys, &fixtures::cycle(1, 1))];
        let (url, _) = distributor_with(frames, Some(code)).await;
        let cfg = ClientConfig::new(&url, KeyPair::generate(), keys.public_key());
        let mut sub = Client::connect(&cfg).await.unwrap();
        assert!(sub.next().await.unwrap().is_ok());
        match sub.next().await.unwrap() {
            Err(ClientError::Closed { code: c, reason }) => {
                assert_eq!((c, reason.as_str()), (code, "test"))
            }
            other => panic!("close {code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn after_a_slow_consumer_close_it_resumes_from_what_it_has() {
    let keys = KeyPair::generate();
    let (c1, c2, c3) = (
        fixtures::cycle(1, 1_700_000_000_000),
        fixtures::cycle(2, 1_700_000_060_000),
        fixtures::cycle(3, 1_700_000_120_000),
    );
    let (url, seen) = distributor(vec![
        Script::Send(vec![signed(&keys, &c1), signed(&keys, &c2)], Some(4001)),
        Script::Send(vec![signed(&keys, &c3)], None),
    ])
    .await;
    let cfg = ClientConfig::new(&url, KeyPair::generate(), keys.public_key());
    let mut client = ResumingClient::new(cfg);
    for want in [&c1, &c2, &c3] {
        let got = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got.record, want);
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, None, "the first connection starts live");
    let resumed = seen[1].1.as_ref().and_then(|s| s.cycle);
    assert_eq!(resumed, Some(2), "the second resumes after cycle 2");
    assert!(
        seen[1].0 - seen[0].0 >= ResumingClient::MIN_BACKOFF,
        "a closed connection is not redialled before the back-off"
    );
    assert_eq!(client.connects(), 2);
}

#[tokio::test]
async fn failed_connections_back_off_doubling() {
    let keys = KeyPair::generate();
    // Four refusals (503), then a record.
    let mut scripts = vec![Script::Refuse(503); 4];
    scripts.push(Script::Send(
        vec![signed(&keys, &fixtures::cycle(1, 1))],
        None,
    ));
    let (url, seen) = distributor(scripts).await;
    let cfg = ClientConfig::new(&url, KeyPair::generate(), keys.public_key());
    let mut client = ResumingClient::new(cfg);
    let got = tokio::time::timeout(Duration::from_secs(20), client.next())
        .await
        .unwrap();
    assert!(got.is_ok());
    let at: Vec<Instant> = seen.lock().unwrap().iter().map(|(t, _)| *t).collect();
    assert_eq!(at.len(), 5);
    // Each wait is at least the back-off, which doubles from MIN_BACKOFF: 100, 200, 400, 800 ms.
    let mut backoff = ResumingClient::MIN_BACKOFF;
    for pair in at.windows(2) {
        let waited = pair[1] - pair[0];
        assert!(waited >= backoff, "waited {waited:?}, back-off {backoff:?}");
        backoff *= 2;
    }
}

#[tokio::test]
async fn a_refused_subscription_is_returned_only_when_asked_to_stop() {
    let keys = KeyPair::generate();
    let (url, seen) = distributor(vec![Script::Refuse(401)]).await;
    let cfg = || ClientConfig::new(&url, KeyPair::generate(), keys.public_key());

    let mut stopping = ResumingClient::new(cfg()).stop_on_refusal();
    match tokio::time::timeout(Duration::from_secs(5), stopping.next())
        .await
        .unwrap()
    {
        Err(ClientError::Ws(firehose_client::tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 401)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A long-running collector keeps trying (a reload may list the key).
    let mut patient = ResumingClient::new(cfg());
    let r = tokio::time::timeout(Duration::from_millis(800), patient.next()).await;
    assert!(r.is_err(), "still trying");
    let attempts = seen.lock().unwrap().len() - 1;
    assert!(attempts >= 3, "retried: {attempts}");
}
