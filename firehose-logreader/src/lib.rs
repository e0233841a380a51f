//! # firehose-logreader
//!
//! Tails the rotating data-log files an archiver writes (`cycle-log<N>.txt`, ...) and yields
//! their entries in order, exactly once, across rotations and restarts. (In progress.)
