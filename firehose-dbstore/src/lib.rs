//! # firehose-dbstore
//!
//! Reads an archiver's SQLite databases (read-only, while the archiver writes them). (In progress.)
