//! The post-failover hook port: something outside MySQL (DNS, a proxy) to tell about a new
//! primary. The loop never waits for it.

/// What a hook is told about a confirmed promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInfo {
    pub new_primary_site: String,
    /// `host:port` of the new primary, as configured.
    pub new_primary_address: String,
    /// The primary before the failover, when one was known.
    pub old_primary_site: Option<String>,
}

/// Runs the post-failover hook. Implementations must return at once (spawn the work) and
/// bound it with their own timeout; `on_failure` is called when a run fails or times out.
pub trait FailoverHook: Send + Sync {
    fn fire(&self, info: HookInfo, on_failure: Box<dyn FnOnce() + Send>);
}

/// No hook configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHook;

impl FailoverHook for NoHook {
    fn fire(&self, _info: HookInfo, _on_failure: Box<dyn FnOnce() + Send>) {}
}
