//! The Kubernetes API, over kube-rs.
//!
//! - For the webhooks: the cluster as cross-object rules see it, an in-memory cache of a few
//!   kinds ([`cache`]) filled by list-then-watch loops ([`watch`]).
//! - For the operator: the Lease replicas elect a leader with ([`lease`]); the child-object
//!   caches and server-side apply behind the objects port ([`objects`]); the failover state
//!   in the group's status ([`status`]); Events, pod labels, node taints and the DNSEndpoint
//!   that follow each decision ([`reactions`]); the credential Secrets a group names
//!   ([`secrets`]); and the count of every request sent ([`requests`]).

pub mod cache;
pub mod lease;
pub mod objects;
pub mod reactions;
pub mod requests;
pub mod secrets;
pub mod status;
pub mod watch;
pub mod webhook_certs;

pub use cache::{ClusterCache, Listing};
pub use objects::KubeObjects;
pub use watch::{ClusterWatch, LOOKUP_RESOURCES, LookupResource, WatchScope};
