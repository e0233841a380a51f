//! Rings of other sizes than the default 10 (the archiver's `maxLogFiles` is a setting) and
//! an empty pointer file: read with the default options, exactly once, with no false gap.

use firehose_core::fixtures;
use firehose_core::records::DataType;
use firehose_logreader::reader::{DataLogReader, LogEvent, StartAt};
use firehose_logreader::writer::{DataLogWriter, WriterOptions};

fn line(i: u64) -> String {
    fixtures::receipt(i, 1_700_000_000_000 + i, i / 100, 300).to_canonical_json()
}

/// Reads what is there; returns the receipt indexes; fails on a gap or a bad line.
fn drain(r: &mut DataLogReader) -> Vec<u64> {
    let mut out = Vec::new();
    let mut events = Vec::new();
    while r.read_available(1000, &mut events).unwrap() > 0 {}
    for ev in events {
        match ev {
            LogEvent::Entry(e) => out.push(e.key.cycle * 100 + index(&e.raw)),
            LogEvent::Gap(g) => panic!("false gap: {}", g.reason),
            LogEvent::Malformed(m) => panic!("malformed: {}", m.reason),
            LogEvent::Untyped(u) => panic!("untyped: {}", u.reason),
        }
    }
    out
}

/// The receipt's index within its cycle, from its timestamp.
fn index(raw: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
    (v["timestamp"].as_u64().unwrap() - 1_700_000_000_000) % 100
}

fn three_laps_of(ring: u32) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        max_entries: 7,
        max_log_files: ring,
        buffer_bytes: 500,
    };
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts).unwrap();
    // The reader does not know the ring size: it has the default (10).
    let mut r = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Oldest);
    let total = 7 * u64::from(ring) * 3 + 3;
    let mut got = Vec::new();
    for i in 0..total {
        w.append(line(i).as_bytes()).unwrap();
        // Read every few entries: the ring is never lapped by the writer.
        if i % 5 == 4 {
            w.flush().unwrap();
            got.extend(drain(&mut r));
        }
    }
    w.flush().unwrap();
    got.extend(drain(&mut r));
    assert_eq!(got, (0..total).collect::<Vec<_>>(), "ring of {ring}");
}

#[test]
fn a_ring_of_5_reads_exactly_once_with_no_gap() {
    three_laps_of(5);
}

#[test]
fn a_ring_of_20_reads_exactly_once_with_no_gap() {
    three_laps_of(20);
}

#[test]
fn an_empty_pointer_file_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("active-receipt-log.txt"), "").unwrap();
    let mut r = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Live);
    assert!(drain(&mut r).is_empty(), "nothing yet, and no error");
    let opts = WriterOptions {
        max_entries: 10,
        ..WriterOptions::default()
    };
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts).unwrap();
    for i in 0..15 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(drain(&mut r), (0..15).collect::<Vec<_>>());
}

/// One line far longer than the limit, in the middle of a file: reported with its line
/// number and size, skipped without being kept in memory, and the entries after it are read.
#[test]
fn an_overlong_line_is_reported_and_skipped() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "receipt", WriterOptions::default()).unwrap();
    for i in 0..3 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut r = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Oldest)
        .with_max_line_bytes(1 << 20);
    assert_eq!(drain(&mut r), [0, 1, 2]);
    // 5 MB of one line, appended in pieces as a slow writer would.
    let path = dir.path().join("receipt-log1.txt");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut events = Vec::new();
    for _ in 0..5 {
        f.write_all(&chunk).unwrap();
        r.read_available(1000, &mut events).unwrap();
    }
    f.write_all(b"\n").unwrap();
    drop(f);
    for i in 3..6 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    while r.read_available(1000, &mut events).unwrap() > 0 {}
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for ev in events {
        match ev {
            LogEvent::Entry(e) => ids.push(e.key.cycle * 100 + index(&e.raw)),
            LogEvent::Malformed(m) => bad.push(m),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids, [3, 4, 5]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 4);
    assert!(
        bad[0]
            .reason
            .contains(&format!("{} bytes", 5 * (1 << 20) + 1)),
        "{}",
        bad[0].reason
    );
}

/// The active file is truncated while the writer appends on: a gap with its size, then the
/// entries written after the truncation are read.
#[test]
fn a_truncated_active_file_is_a_gap_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "receipt", WriterOptions::default()).unwrap();
    for i in 0..10 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut r = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Oldest);
    assert_eq!(drain(&mut r), (0..10).collect::<Vec<_>>());
    let path = dir.path().join("receipt-log1.txt");
    let before = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    for i in 10..14 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut events = Vec::new();
    while r.read_available(1000, &mut events).unwrap() > 0 {}
    let gaps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            LogEvent::Gap(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{events:?}");
    let after = std::fs::metadata(&path).unwrap().len();
    assert_eq!(gaps[0].bytes, before - after);
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            LogEvent::Entry(e) => Some(e.key.cycle * 100 + index(&e.raw)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, (10..14).collect::<Vec<_>>());
}
