//! The reader against a writer that behaves exactly like the archiver's, on real files.

use std::collections::HashMap;

use firehose_core::fixtures;
use firehose_core::records::DataType;
use firehose_logreader::files::LogFiles;
use firehose_logreader::reader::{DataLogReader, LogEvent, LogPosition, StartAt};
use firehose_logreader::writer::{DataLogWriter, WriterOptions};

const MAX_FILES: u32 = 10;

fn opts(max_entries: u64) -> WriterOptions {
    WriterOptions {
        max_entries,
        max_log_files: MAX_FILES,
        // Small buffer: lines are regularly visible half-written.
        buffer_bytes: 700,
    }
}

fn reader(dir: &std::path::Path, start: StartAt) -> DataLogReader {
    let files = LogFiles::new(dir, "receipt").with_max_log_files(MAX_FILES);
    DataLogReader::with_files(files, DataType::Receipt, start)
}

fn line(i: u64) -> String {
    // Sizes vary so that buffer flushes cut lines at varying places.
    fixtures::receipt(
        i,
        1_700_000_000_000 + i,
        i / 100,
        200 + (i as usize * 37) % 900,
    )
    .to_canonical_json()
}

fn ids(n: u64) -> HashMap<String, u64> {
    (0..n).map(|i| (fixtures::id64("tx", i), i)).collect()
}

/// Reads everything available; pushes receipt indexes, counts malformed lines, returns the
/// position of the last entry read.
fn drain(
    r: &mut DataLogReader,
    ids: &HashMap<String, u64>,
    got: &mut Vec<u64>,
    malformed: &mut usize,
) -> Option<LogPosition> {
    let mut events = Vec::new();
    let mut last = None;
    loop {
        events.clear();
        let n = r.read_available(100, &mut events).unwrap();
        for ev in events.drain(..) {
            match ev {
                LogEvent::Entry(e) => {
                    assert_eq!(
                        &e.raw[..],
                        e.record().unwrap().to_canonical_json().as_bytes()
                    );
                    got.push(ids[&*e.key.id]);
                    last = Some(e.position);
                }
                LogEvent::Malformed(_) => *malformed += 1,
                LogEvent::Untyped(u) => panic!("unexpected untyped entry: {}", u.reason),
                LogEvent::Gap(g) => panic!("unexpected gap: {}", g.reason),
            }
        }
        if n == 0 {
            return last;
        }
    }
}

#[test]
fn three_rotations_with_restarts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let per_file = 40;
    let total = per_file * MAX_FILES as u64 * 3 + 17; // three full laps and a bit
    let ids = ids(total);

    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(per_file)).unwrap();
    let mut r = reader(dir.path(), StartAt::Oldest);
    let mut got = Vec::new();
    let mut malformed = 0;
    // A saved position and how many entries had been read when it was saved.
    let mut saved: Option<(LogPosition, usize)> = None;
    let mut reader_restarts = 0;

    for i in 0..total {
        w.append(line(i).as_bytes()).unwrap();
        // The reader sometimes keeps up, sometimes lags a few files behind (reading through
        // files already renamed to `old-`).
        let lagging = (i / 97) % 3 == 2;
        if !lagging && i % 7 == 0 {
            if let Some(p) = drain(&mut r, &ids, &mut got, &mut malformed) {
                saved = Some((p, got.len()));
            }
        }
        // Writer restarts (clean: buffer flushed, then the file reopened and counted).
        if i % 211 == 100 {
            w.flush().unwrap();
            drop(w);
            w = DataLogWriter::open(dir.path(), "receipt", opts(per_file)).unwrap();
        }
        // Reader restarts from its last saved position (what it read after that is forgotten).
        if i % 293 == 150 {
            if let Some((p, count)) = saved {
                got.truncate(count);
                r = reader(dir.path(), StartAt::After(p));
                reader_restarts += 1;
            }
        }
    }
    w.flush().unwrap();
    drain(&mut r, &ids, &mut got, &mut malformed);

    assert!(reader_restarts >= 3);
    assert_eq!(malformed, 0);
    let want: Vec<u64> = (0..total).collect();
    assert_eq!(got.len(), want.len(), "entries read");
    assert_eq!(got, want, "every entry exactly once, in order");
}

#[test]
fn writer_crash_mid_line_loses_only_the_cut_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(200);
    let o = WriterOptions {
        buffer_bytes: 1 << 20,
        ..opts(1000)
    };
    let mut w = DataLogWriter::open(dir.path(), "receipt", o).unwrap();
    let mut r = reader(dir.path(), StartAt::Oldest);
    for i in 0..50 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    w.append(line(50).as_bytes()).unwrap();
    // Crash with half of entry 50 on disk.
    w.crash(line(50).len() / 2).unwrap();
    let mut got = Vec::new();
    let mut malformed = 0;
    drain(&mut r, &ids, &mut got, &mut malformed);
    assert_eq!(
        got,
        (0..50).collect::<Vec<_>>(),
        "the half line is not yielded"
    );

    let mut w = DataLogWriter::open(dir.path(), "receipt", o).unwrap();
    for i in 51..100 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    drain(&mut r, &ids, &mut got, &mut malformed);
    assert_eq!(malformed, 1, "the half line is reported");
    let want: Vec<u64> = (0..50).chain(51..100).collect();
    assert_eq!(got, want);
}

#[test]
fn corrupted_lines_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(20);
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(1000)).unwrap();
    for i in 0..10 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.append(b"{not json").unwrap();
    w.append(br#"{"receiptId":"x"}"#).unwrap(); // a JSON object, not a receipt: forwarded
    w.append(b"[1,2]").unwrap(); // JSON, not an object
    w.append(b"").unwrap(); // empty line: ignored
    for i in 10..20 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut r = reader(dir.path(), StartAt::Oldest);
    let mut events = Vec::new();
    while r.read_available(1000, &mut events).unwrap() > 0 {}
    let mut got = Vec::new();
    let mut bad = Vec::new();
    let mut untyped = Vec::new();
    for ev in events {
        match ev {
            LogEvent::Entry(e) => got.push(ids[&*e.key.id]),
            LogEvent::Malformed(m) => bad.push(m),
            LogEvent::Untyped(u) => untyped.push(u),
            LogEvent::Gap(g) => panic!("{}", g.reason),
        }
    }
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].line, 11);
    assert_eq!(bad[1].line, 13);
    assert_eq!(bad[1].reason, "not a JSON object");
    assert_eq!(untyped.len(), 1);
    assert_eq!(&untyped[0].raw[..], br#"{"receiptId":"x"}"#);
    assert_eq!(untyped[0].position.line, 12);
    assert!(bad[0].path.ends_with("receipt-log1.txt"));
}

#[test]
fn live_start_skips_existing_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(100);
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(10)).unwrap();
    for i in 0..25 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut r = reader(dir.path(), StartAt::Live);
    let mut got = Vec::new();
    let mut malformed = 0;
    assert!(drain(&mut r, &ids, &mut got, &mut malformed).is_none());
    for i in 25..60 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    drain(&mut r, &ids, &mut got, &mut malformed);
    assert_eq!(got, (25..60).collect::<Vec<_>>());
}

#[test]
fn live_start_before_any_log_reads_everything_new() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(30);
    let mut r = reader(dir.path(), StartAt::Live);
    let mut got = Vec::new();
    let mut malformed = 0;
    assert!(drain(&mut r, &ids, &mut got, &mut malformed).is_none());
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(10)).unwrap();
    for i in 0..30 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    drain(&mut r, &ids, &mut got, &mut malformed);
    assert_eq!(got, (0..30).collect::<Vec<_>>());
}

#[test]
fn lost_position_reports_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(5)).unwrap();
    for i in 0..8 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let mut r = reader(dir.path(), StartAt::Oldest);
    let mut events = Vec::new();
    r.read_available(1, &mut events).unwrap();
    let LogEvent::Entry(first) = &events[0] else {
        panic!("expected an entry")
    };
    let pos = first.position;
    // The file holding the position disappears (as if the ring went round meanwhile).
    std::fs::remove_file(dir.path().join("receipt-log1.txt")).unwrap();
    let mut r = reader(dir.path(), StartAt::After(pos));
    let mut events = Vec::new();
    r.read_available(100, &mut events).unwrap();
    assert!(matches!(&events[0], LogEvent::Gap(_)));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, LogEvent::Entry(_)))
            .count(),
        3
    );
}

#[test]
fn lagging_reader_reads_through_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let per_file = 10;
    let ids = ids(400);
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts(per_file)).unwrap();
    let mut r = reader(dir.path(), StartAt::Oldest);
    let mut got = Vec::new();
    let mut malformed = 0;
    // Lap 1 read as it is written, up to file 7.
    for i in 0..65 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    drain(&mut r, &ids, &mut got, &mut malformed);
    // The writer goes on to file 5 of lap 2: files 6..10 of lap 1 become `old-`.
    for i in 65..145 {
        w.append(line(i).as_bytes()).unwrap();
    }
    w.flush().unwrap();
    assert!(dir.path().join("old-receipt-log8.txt").exists());
    // Read one entry at a time and watch the reader go through the renamed files.
    let mut through_old = 0;
    loop {
        let mut events = Vec::new();
        if r.read_available(1, &mut events).unwrap() == 0 {
            break;
        }
        for ev in events {
            if let LogEvent::Entry(e) = ev {
                got.push(ids[&*e.key.id]);
                let now = r.current_path().unwrap().to_owned();
                let name = now.file_name().unwrap().to_str().unwrap();
                if name.starts_with("old-") || !now.exists() {
                    through_old += 1;
                }
            }
        }
    }
    assert!(
        through_old >= 30,
        "read {through_old} entries from renamed files"
    );
    assert_eq!(malformed, 0);
    assert_eq!(got, (0..145).collect::<Vec<_>>());
}

#[test]
fn oldest_follows_the_ring_when_every_mtime_is_the_same() {
    // A coarse clock gives many rotations one mtime: the start must come from the ring order
    // (found by the distributor's restart test: a new lap was read before the end of the old).
    for active_after in (41u64..=125).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        let ids = ids(active_after);
        let mut w = DataLogWriter::open(dir.path(), "receipt", opts(4)).unwrap();
        for i in 0..active_after {
            w.append(line(i).as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let same =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_str().unwrap().contains("-log") {
                let f = std::fs::File::options().append(true).open(&path).unwrap();
                f.set_modified(same).unwrap();
            }
        }
        let mut r = reader(dir.path(), StartAt::Oldest);
        let mut got = Vec::new();
        let mut malformed = 0;
        drain(&mut r, &ids, &mut got, &mut malformed);
        assert_eq!(malformed, 0);
        let first = got[0];
        assert_eq!(
            got,
            (first..active_after).collect::<Vec<_>>(),
            "after {active_after} entries: in order from the oldest on disk"
        );
        assert!(
            first < active_after - 4 * 5,
            "half a ring at least is on disk"
        );
    }
}
