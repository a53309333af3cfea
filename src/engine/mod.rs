//! Pure decision code: no I/O, no clock reads, no randomness. Everything here takes the
//! current time (when it needs one) as an argument and returns data describing what to do.

pub mod address;
pub mod duration;
pub mod failover;
pub mod gtid;
pub mod lease;
pub mod manifest;
pub mod report;
pub mod rules;
