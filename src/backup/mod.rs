//! Pure backup cores: the artifact codec (zstd, then the sealed format), the repository
//! layout and manifest, the retention planner, the point-in-time replay planner, and the
//! logical method's dump description, chunk format and chunk planning.
//!
//! Nothing here touches storage, MySQL or a clock: the object store and database I/O live
//! in adapters, which feed these cores bytes, records and the current time.

pub mod codec;
pub mod logical;
pub mod manifest;
pub mod pitr;
pub mod restore_run;
pub mod retention;
pub mod retry;
pub mod run;
pub mod sanity;
pub mod seal;
pub mod source;
pub mod verification;
