//! # firehose-sim
//!
//! Simulated data sources for demos, tests and benchmarks, kept out of the production
//! crates' public APIs:
//!
//! | module | what it simulates |
//! |---|---|
//! | [`archiver`] | a Shardeum archiver: rotating data logs and an archiver-shaped SQLite database (feature `archiver`) |
//! | [`observer`] | a MultiversX observer node: outport blocks on a websocket, acks awaited (feature `observer`) |
//!
//! Archiver databases alone are written by `firehose_dbstore::fixture` (feature `sim`), and
//! sample records come from `firehose_core::fixtures` (feature `fixtures`); the archiver here
//! is built on both.
//!
//! ```
//! # #[cfg(feature = "archiver")] {
//! use firehose_sim::ArchiverSim;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut sim = ArchiverSim::create(dir.path(), Default::default(), 100).unwrap();
//! let written = sim.write_cycle().unwrap();
//! assert!(written.len() > 1);
//! # }
//! ```

#[cfg(feature = "archiver")]
pub mod archiver;
#[cfg(feature = "observer")]
pub mod observer;

#[cfg(feature = "archiver")]
pub use archiver::ArchiverSim;
