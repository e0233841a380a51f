//! The connector over real loopback websockets: the route, the JSON envelope and the legacy
//! format, client mode across a node restart, nanosecond timestamps.

mod connector_support;

use connector_support::*;

#[tokio::test]
async fn only_the_save_route_is_served() {
    let run = start_server(server_config(), firehose(), Capture::default()).await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/other", run.addr))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn json_envelope_and_legacy_format() {
    let out = Capture::default();
    let cfg = Config {
        marshaller: Marshaller::Json,
        ..server_config()
    };
    let run = start_server(cfg, Arc::new(LegacyFormat::default()), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Json).await;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    o.send_block(payload.clone().into(), true).await.unwrap();
    assert_eq!(
        out.lines(),
        vec![
            "FIRE BLOCK_BEGIN 1".to_owned(),
            format!(
                "FIRE BLOCK_END 1 707265762068617368 100 {}",
                hex::encode(&payload)
            ),
        ]
    );
}

/// A node in server mode: accepts the connector on /save and hands out observers.
async fn node_server(listener: TcpListener) -> Observer<TcpStream> {
    let (stream, _) = listener.accept().await.unwrap();
    let ws: WebSocketStream<TcpStream> = tokio_tungstenite::accept_async(stream).await.unwrap();
    let mut o = Observer::new(ws, Marshaller::Protobuf);
    o.ack_timeout = Duration::from_secs(10);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_reconnects_after_the_node_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let out = Capture::default();
    let cfg = Config {
        mode: Mode::Client,
        url: addr.to_string(),
        retry_duration: Duration::from_millis(100),
        ..Config::default()
    };
    let mut init = Vec::new();
    firehose().init(&mut init);
    let (writer, _t) = Writer::spawn(out.clone(), init).unwrap();
    let connector = Connector::new(cfg, firehose(), writer);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(connector.clone().dial(async {
        let _ = stopped.await;
    }));

    let mut node = node_server(listener).await;
    for nonce in 1..=3 {
        node.send_block(block_payload(HeaderKind::Header, 0, nonce, 1000), true)
            .await
            .unwrap();
    }
    // The node goes away (connection and listener), then comes back on the same port.
    node.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut node = node_server(listener).await;
    for nonce in 4..=6 {
        node.send_block(block_payload(HeaderKind::Header, 0, nonce, 1000), true)
            .await
            .unwrap();
    }
    let lines = out.lines();
    let nonces: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(nonces, vec!["1", "2", "3", "4", "5", "6"]);
    assert!(
        connector
            .stats()
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn timestamp_nanos_flag() {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    let info = decode_block(&payload).unwrap();
    let mut line = Vec::new();
    FirehoseFormat {
        timestamp_nanos: true,
    }
    .block(&info, &payload, &mut line);
    assert!(String::from_utf8(line)
        .unwrap()
        .contains(" 0 100000000000 "));
}
