//! # firehose-sim
//!
//! Simulated data sources for demos, tests and benchmarks, kept out of the production
//! crates' public APIs:
//!
//! | module | what it simulates |
//! |---|---|
//! | [`archiver`] | a Shardeum archiver: rotating data logs and an archiver-shaped SQLite database |
//!
//! The MultiversX observer simulator is `firehose_ws_connector::sim` (feature `sim`), beside
//! the codec it speaks; archiver databases alone are `firehose_dbstore::fixture` (feature `sim`).
//!
//! ```
//! use firehose_sim::ArchiverSim;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut sim = ArchiverSim::create(dir.path(), Default::default(), 100).unwrap();
//! let written = sim.write_cycle().unwrap();
//! assert!(written.len() > 1);
//! ```

pub mod archiver;

pub use archiver::ArchiverSim;
