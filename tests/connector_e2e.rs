//! End to end over real loopback websockets: the connector against simulated observer nodes.

mod connector_support;

use connector_support::*;

#[tokio::test]
async fn reproduces_the_originals_vector_line() {
    let out = Capture::default();
    let run = start_server(server_config(), firehose(), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(VECTOR_PAYLOAD)
        .unwrap();
    o.send_block(payload.into(), true).await.unwrap();
    assert_eq!(out.lines(), vec![INIT.to_owned(), VECTOR_LINE.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_observers_never_interleave() {
    let out = Capture::default();
    let run = start_server(server_config(), firehose(), out.clone()).await;
    let mut tasks = Vec::new();
    for shard in 0..4u32 {
        let addr = run.addr;
        tasks.push(tokio::spawn(async move {
            let mut o = observer(addr, Marshaller::Protobuf).await;
            for nonce in 1..=40 {
                let p = block_payload(HeaderKind::HeaderV2, shard, nonce, 64 * 1024);
                o.send_block(p, true).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let lines = out.lines();
    assert_eq!(lines.len(), 1 + 160);
    let mut per_shard: Vec<Vec<u64>> = vec![Vec::new(); 4];
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 9, "a whole line: {}", &line[..80]);
        assert_eq!(&f[..2], &["FIRE", "BLOCK"]);
        let payload = base64::engine::general_purpose::STANDARD
            .decode(f[8])
            .unwrap();
        let info = decode_block(&payload).unwrap();
        assert_eq!(f[2], info.nonce.to_string());
        per_shard[info.shard as usize].push(info.nonce);
    }
    for nonces in per_shard {
        assert_eq!(nonces, (1..=40).collect::<Vec<_>>());
    }
    assert_eq!(
        run.connector
            .stats()
            .acks_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        160
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_only_after_the_line_is_written() {
    let out = Capture::default();
    let (permit, permits) = std_mpsc::channel();
    permit.send(()).unwrap(); // the INIT line, written at start-up
    let run = start_server(
        server_config(),
        firehose(),
        Gated {
            inner: out.clone(),
            permits,
        },
    )
    .await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(300);
    o.max_resends = 0;
    let p = block_payload(HeaderKind::Header, 0, 7, 1024);
    o.send_block(p, false).await.unwrap(); // sent with WithAcknowledge=false: no ack expected
    permit.send(()).unwrap();
    wait_for_lines(&out, 2).await;
    // Now with an ack: the write is held at the gate, so no ack may come.
    let msg = Marshaller::Protobuf.encode(&firehose_ws_connector::proto::WsMessage {
        with_acknowledge: true,
        counter: 2,
        r#type: 2,
        payload: block_payload(HeaderKind::Header, 0, 8, 1024),
        topic: "SaveBlock".into(),
        version: 1,
    });
    o.send_raw(msg).await.unwrap();
    assert!(!o.wait_ack(2).await.unwrap(), "acked before the write");
    assert_eq!(out.lines().len(), 2);
    permit.send(()).unwrap();
    o.ack_timeout = Duration::from_secs(10);
    assert!(o.wait_ack(2).await.unwrap(), "ack after the write");
    assert_eq!(out.lines().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_is_not_acked_and_the_resend_is_printed_once() {
    let out = Capture::default();
    let run = start_server(
        server_config(),
        firehose(),
        Flaky {
            inner: out.clone(),
            fail: 1,
        },
    )
    .await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(500);
    o.send_block(block_payload(HeaderKind::Header, 1, 5, 2048), true)
        .await
        .unwrap();
    assert_eq!(o.resends, 1, "the first attempt was not acked");
    o.send_block(block_payload(HeaderKind::Header, 1, 6, 2048), true)
        .await
        .unwrap();
    let lines = out.lines();
    let blocks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("FIRE BLOCK "))
        .collect();
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].starts_with("FIRE BLOCK 5 "));
    assert!(blocks[1].starts_with("FIRE BLOCK 6 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dropped_and_the_connection_lives_on() {
    let out = Capture::default();
    let cfg = Config {
        max_message_size: 1 << 20,
        max_frame_size: 1 << 20,
        ..server_config()
    };
    let run = start_server(cfg, firehose(), out.clone()).await;
    let mut o = observer(run.addr, Marshaller::Protobuf).await;
    o.ack_timeout = Duration::from_millis(300);
    o.max_resends = 0;
    // Garbage that is not a WsMessage.
    o.send_raw(vec![0xff, 0xff, 0xff, 0x0f, 0x01])
        .await
        .unwrap();
    o.send_raw(Vec::new()).await.unwrap();
    // A SaveBlock whose payload is truncated protobuf: not acked (blocking ack on error).
    let mut bad = block_payload(HeaderKind::Header, 0, 1, 500).to_vec();
    bad.truncate(bad.len() / 2);
    assert!(o.send_block(bad.into(), true).await.is_err());
    // An unknown header type: not acked.
    let unknown = firehose_ws_connector::proto::BlockData {
        header_type: "HeaderV9".into(),
        header_bytes: Bytes::from_static(b"\x08\x01"),
        ..Default::default()
    };
    let mut block = Vec::new();
    prost::Message::encode(
        &firehose_ws_connector::proto::OutportBlock {
            shard_id: 0,
            block_data: Some(unknown),
            highest_final_block_nonce: 0,
        },
        &mut block,
    )
    .unwrap();
    assert!(o.send_block(block.into(), true).await.is_err());
    // An unhandled topic is acked.
    o.ack_timeout = Duration::from_secs(10);
    o.send("SaveRoundsInfo", Bytes::from_static(b"\x08\x01"), true)
        .await
        .unwrap();
    // The same connection still prints the next good block.
    o.send_block(block_payload(HeaderKind::MetaBlock, u32::MAX, 2, 500), true)
        .await
        .unwrap();
    let lines = out.lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("FIRE BLOCK 2 "));

    // An oversize message ends that connection (the frame cannot be read), not the connector.
    let mut big = observer(run.addr, Marshaller::Protobuf).await;
    big.ack_timeout = Duration::from_millis(500);
    big.max_resends = 0;
    let _ = big
        .send_block(block_payload(HeaderKind::Header, 0, 3, 2 << 20), true)
        .await;
    let mut again = observer(run.addr, Marshaller::Protobuf).await;
    again
        .send_block(block_payload(HeaderKind::Header, 0, 4, 1000), true)
        .await
        .unwrap();
    assert!(out.lines().last().unwrap().starts_with("FIRE BLOCK 4 "));
    let stats = run.connector.stats();
    assert!(
        stats
            .bad_messages
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    assert_eq!(
        stats
            .failed_blocks
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
