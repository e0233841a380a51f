//! Async tailing with a concurrent writer thread, real inotify, real files.

use std::collections::HashMap;
use std::time::Duration;

use firehose_core::fixtures;
use firehose_core::records::DataType;
use firehose_logreader::files::LogFiles;
use firehose_logreader::{
    tail_all, DataLogReader, DataLogWriter, LogEvent, LogTail, StartAt, TailOptions, WriterOptions,
};

fn writer_opts(max_entries: u64) -> WriterOptions {
    WriterOptions {
        max_entries,
        max_log_files: 10,
        buffer_bytes: 1000,
    }
}

/// Writes `total` receipts from a thread, restarting the writer now and then.
fn spawn_writer(
    dir: std::path::PathBuf,
    name: &'static str,
    total: u64,
    per_file: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut w = DataLogWriter::open(&dir, name, writer_opts(per_file)).unwrap();
        for i in 0..total {
            let line = match name {
                "receipt" => {
                    fixtures::receipt(i, 1_700_000_000_000 + i, i / 50, 300).to_canonical_json()
                }
                "cycle" => fixtures::cycle(i, 1_700_000_000_000).to_canonical_json(),
                _ => fixtures::original_tx(i, 1_700_000_000_000 + i, i / 50).to_canonical_json(),
            };
            w.append(line.as_bytes()).unwrap();
            if i % 50 == 0 {
                w.flush().unwrap();
                std::thread::sleep(Duration::from_micros(300));
            }
            if i % 333 == 200 {
                w.flush().unwrap();
                drop(w);
                w = DataLogWriter::open(&dir, name, writer_opts(per_file)).unwrap();
            }
        }
        w.flush().unwrap();
    })
}

async fn collect(tail: &mut LogTail, n: usize) -> Vec<(DataType, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), tail.recv()).await {
            Ok(Some(LogEvent::Entry(e))) => got.push((e.data_type, e.key.id.to_string())),
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => panic!("tail ended"),
            Err(_) => panic!("timed out after {} of {n} entries", got.len()),
        }
    }
    got
}

async fn concurrent_rotation(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let total = 3 * 10 * 30 + 11; // three laps of 10 files of 30 entries
    let files = LogFiles::new(dir.path(), "receipt");
    let reader = DataLogReader::with_files(files, DataType::Receipt, StartAt::Oldest);
    let opts = TailOptions {
        inotify,
        poll_interval: Duration::from_millis(if inotify { 500 } else { 5 }),
        batch: 64,
        channel_capacity: 32,
        ..TailOptions::default()
    };
    let mut tail = LogTail::spawn(reader, opts).await.unwrap();
    let writer = spawn_writer(dir.path().to_owned(), "receipt", total, 30);
    let got = collect(&mut tail, total as usize).await;
    writer.join().unwrap();
    let index: HashMap<String, u64> = (0..total).map(|i| (fixtures::id64("tx", i), i)).collect();
    let order: Vec<u64> = got.iter().map(|(_, id)| index[id]).collect();
    assert_eq!(order, (0..total).collect::<Vec<_>>());
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), tail.recv())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_three_laps_with_inotify() {
    concurrent_rotation(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_three_laps_polling_only() {
    concurrent_rotation(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_all_merges_the_three_types_in_order_per_type() {
    let dir = tempfile::tempdir().unwrap();
    let n = 400u64;
    let mut tail = tail_all(dir.path(), |_| StartAt::Live, TailOptions::default())
        .await
        .unwrap();
    let writers: Vec<_> = ["cycle", "receipt", "originalTx"]
        .into_iter()
        .map(|name| spawn_writer(dir.path().to_owned(), name, n, 100))
        .collect();
    let got = collect(&mut tail, 3 * n as usize).await;
    for w in writers {
        w.join().unwrap();
    }
    for t in DataType::ALL {
        let ids: Vec<&String> = got
            .iter()
            .filter(|(dt, _)| *dt == t)
            .map(|(_, id)| id)
            .collect();
        let label = if t == DataType::Cycle { "cycle" } else { "tx" };
        let want: Vec<String> = (0..n).map(|i| fixtures::id64(label, i)).collect();
        assert_eq!(ids, want.iter().collect::<Vec<_>>(), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_sees_appends_to_the_active_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "receipt", writer_opts(500)).unwrap();
    w.flush().unwrap();
    let reader = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Live);
    let mut tail = LogTail::spawn(reader, TailOptions::default())
        .await
        .unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..20u64 {
            let line = fixtures::receipt(i, 1_700_000_000_000 + i, 1, 1024).to_canonical_json();
            w.append(line.as_bytes()).unwrap();
            w.flush().unwrap();
        }
    });
    let got = collect(&mut tail, 20).await;
    writer.join().unwrap();
    let want: Vec<String> = (0..20).map(|i| fixtures::id64("tx", i)).collect();
    assert_eq!(got.into_iter().map(|(_, id)| id).collect::<Vec<_>>(), want);
}

/// The data-log directory is removed and created again (an operator restores it, an archiver
/// is redeployed): inotify watches the new directory, so entries keep arriving at once, not
/// only at the (here: one minute) safety-net poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_directory_is_watched_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let line = |i: u64| fixtures::receipt(i, 1_700_000_000_000 + i, 0, 300).to_canonical_json();
    let mut w = DataLogWriter::open(&dir, "receipt", writer_opts(1000)).unwrap();
    w.append(line(0).as_bytes()).unwrap();
    w.flush().unwrap();
    let opts = TailOptions {
        poll_interval: Duration::from_secs(60),
        ..TailOptions::default()
    };
    let reader = DataLogReader::new(&dir, DataType::Receipt, StartAt::Oldest);
    let mut tail = LogTail::spawn(reader, opts).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), tail.recv()).await {
        Ok(Some(LogEvent::Entry(e))) => assert_eq!(&*e.key.id, fixtures::id64("tx", 0)),
        other => panic!("no first entry within 5 s: {other:?}"),
    }
    drop(w);
    std::fs::remove_dir_all(&dir).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::create_dir(&dir).unwrap();
    // Past the re-watch interval, then a new archiver starts writing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut w = DataLogWriter::open(&dir, "receipt", writer_opts(1000)).unwrap();
    for i in 1..=3 {
        w.append(line(i).as_bytes()).unwrap();
        w.flush().unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), tail.recv()).await {
                Ok(Some(LogEvent::Entry(e))) => {
                    assert_eq!(&*e.key.id, fixtures::id64("tx", i));
                    break;
                }
                Ok(Some(LogEvent::Gap(_) | LogEvent::Malformed(_))) => continue,
                other => panic!("entry {i} not delivered within 5 s: {other:?}"),
            }
        }
    }
}
