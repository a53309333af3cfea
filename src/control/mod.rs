//! Async loops that run observe → decide → act through [`crate::ports`] only, shared by
//! standalone mode and the Kubernetes operator.
