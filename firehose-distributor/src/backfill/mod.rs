//! The back-fill layer: what a collector missed, from the archive database and the retained
//! logs, handed over to the live stream with no gap and no duplicate. A session runs it
//! ([`crate::server::session_backfill`]).
//!
//! | module | what it does |
//! |---|---|
//! | [`resume`] | `since`: back-fill from SQLite and the retained logs, then live |
//! | [`slots`] | at most 32 back-fills at once, one per collector key; slow ones yield |
//! | [`positions`] / [`positions_file`] | where each collector got to (implicit resume), saved to disk |
//! | [`logindex`] | where a resume scans the retained logs from |
//! | [`signatures`] | signatures shared between back-fills that resume over the same rows |
//! | [`archive_db`] | the archiver database: a pool for history, a connection per back-fill |

pub mod archive_db;
pub mod logindex;
pub mod positions;
pub mod positions_file;
pub mod resume;
pub mod signatures;
pub mod slots;
