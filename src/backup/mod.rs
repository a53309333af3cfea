//! Pure backup cores: the sealed (encrypted) artifact format, the retention planner, and
//! the logical method's dump description, chunk format and chunk planning.
//!
//! Nothing here touches storage, MySQL or a clock: object stores and database I/O live in
//! adapters later, which feed these cores bytes, records and the current time.

pub mod logical;
pub mod retention;
pub mod seal;
