//! # firehose-bench
//!
//! The load and benchmark tool behind the figures in the README: every claim about speed or
//! losslessness is a command anyone can re-run (`firehose-bench --help`).
//!
//! | module | what it does |
//! |---|---|
//! | [`fanout`] | N signed collectors against a distributor while entries are appended to its data logs |
//! | [`herd`] | relayer-like collectors through a SIGTERM restart of the distributor while the archiver writes: time back live, refusals, duplicates, lost |
//! | [`backfill`] | collectors resuming from the start of a fixture database (history throughput) |
//! | [`history`] | collectors syncing through the history HTTP API like relayer-collector |
//! | [`connector`] | simulated observer nodes driving the ws-connector; blocks/s, MB/s, ack latency |
//! | [`keys`] | deterministic collector keys and the allow-list that admits them |
//! | [`report`] | one result: a human table or JSON |
//! | [`stats`] | latency summaries (p50 / p99 / max) |
//! | [`sys`] | fd limit, process memory, server processes |
//!
//! ```
//! use firehose_bench::report::Report;
//! use firehose_bench::stats::Summary;
//!
//! let lat = Summary::of(&mut vec![5, 1, 3, 2, 4]);
//! assert_eq!((lat.p50, lat.max), (3, 5));
//! let mut r = Report::new("demo");
//! r.int("lost", "lost", 0, "");
//! assert_eq!(r.to_json()["lost"], 0);
//! ```

pub mod backfill;
pub mod connector;
pub mod fanout;
pub mod herd;
pub mod history;
pub mod keys;
pub mod report;
pub mod stats;
pub mod sys;
