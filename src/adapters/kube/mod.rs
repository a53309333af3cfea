//! The Kubernetes API. The cluster as the webhooks see it: an in-memory cache of the few
//! kinds cross-object rules read ([`cache`]), filled by list-then-watch loops on the API
//! server ([`watch`]). The Lease the operator's replicas elect a leader with ([`lease`]).

pub mod cache;
pub mod lease;
pub mod objects;
pub mod reactions;
pub mod requests;
pub mod secrets;
pub mod status;
pub mod watch;

pub use cache::{ClusterCache, Listing};
pub use objects::KubeObjects;
pub use watch::{ClusterWatch, LOOKUP_RESOURCES, LookupResource, WatchScope};
