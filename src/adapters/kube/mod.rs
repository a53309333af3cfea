//! The cluster as the webhooks see it: an in-memory cache of the few kinds cross-object
//! rules read, filled by watchers.

pub mod cache;

pub use cache::ClusterCache;
