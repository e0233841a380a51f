//! The pipe writer (how a Firehose reader runs the connector): blocks from many connections
//! come out as whole lines through a real pipe with a slow reader, a writer that stops
//! waiting still writes its line whole, and a reader that goes away stops the writer.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use firehose_ws_connector::output::Writer;

/// A line of `len` bytes naming its writer and number.
fn line(task: usize, i: usize, len: usize) -> Vec<u8> {
    let mut l = format!("L{task}-{i}:").into_bytes();
    l.resize(len.max(l.len()), b'x');
    l.push(b'\n');
    l
}

/// Reads lines until EOF, pausing now and then like a busy reader.
fn slow_reader(r: std::io::PipeReader) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        for (n, l) in BufReader::new(r).lines().enumerate() {
            out.push(l.unwrap());
            if n % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_from_many_connections_come_out_whole_through_a_slow_reader() {
    let (r, w) = std::io::pipe().unwrap();
    let writer = Writer::pipe(w.into(), b"INIT\n".to_vec()).unwrap();
    let reader = slow_reader(r);
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    // Up to 3x the pipe's 64 KiB buffer: most lines take several writes.
                    let len = (i * 7919 + task * 104_729) % 200_000;
                    writer.write(line(task, i, len)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    writer.finish().await;
    drop(writer);
    let lines = reader.join().unwrap();
    assert_eq!(lines[0], "INIT");
    assert_eq!(lines.len(), 401);
    let mut next = [0usize; 4];
    for l in &lines[1..] {
        let (name, rest) = l.split_once(':').unwrap();
        let (task, i) = name[1..].split_once('-').unwrap();
        let (task, i): (usize, usize) = (task.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[task], "each connection's blocks in order");
        next[task] += 1;
        let want = line(task, i, (i * 7919 + task * 104_729) % 200_000);
        assert_eq!(l.len() + 1, want.len(), "{name}: the line is whole");
        assert!(
            rest.bytes().all(|b| b == b'x'),
            "{name}: nothing interleaved"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_stops_waiting_still_writes_its_line_whole() {
    let (r, w) = std::io::pipe().unwrap();
    let writer = Writer::pipe(w.into(), Vec::new()).unwrap();
    // Nobody reads yet: a 1 MiB line cannot go out, and its caller gives up waiting.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), writer.write(line(0, 0, 1 << 20))).await;
    assert!(gave_up.is_err(), "the pipe is full, the write must wait");
    let reader = slow_reader(r);
    writer.write(line(1, 0, 10)).await.unwrap();
    writer.finish().await;
    drop(writer);
    let lines = reader.join().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len() + 1, line(0, 0, 1 << 20).len());
    assert_eq!(lines[1], "L1-0:xxxxx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_stops_the_writer() {
    let (r, w) = std::io::pipe().unwrap();
    let writer = Writer::pipe(w.into(), Vec::new()).unwrap();
    drop(r);
    assert!(writer.write(line(0, 0, 10)).await.is_err());
    assert!(writer.is_closed());
    assert!(writer.write(line(0, 1, 10)).await.is_err());
}

#[test]
fn a_file_is_not_a_pipe() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let f = tempfile::tempfile().unwrap();
    assert!(Writer::pipe(f.into(), Vec::new()).is_err());
}
