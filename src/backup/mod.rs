//! Pure backup cores: the sealed (encrypted) artifact format and the retention planner.
//!
//! Nothing here touches storage, MySQL or a clock: object stores and database I/O live in
//! adapters later, which feed these cores bytes, records and the current time.

pub mod codec;
pub mod manifest;
pub mod pitr;
pub mod retention;
pub mod seal;
