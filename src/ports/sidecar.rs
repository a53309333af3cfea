//! A site's sidecar, as the failover loop asks it for a second opinion: when the loop's own
//! probe of the site fails, what does the sidecar beside that MySQL see?

use std::future::Future;
use std::pin::Pin;

use crate::error::{Categorized, Category};
use crate::failover::SidecarReport;

/// Why a sidecar gave no usable answer. The loop treats every one of these as "no second
/// opinion", which leaves the decision exactly as it would be without sidecars.
#[derive(Debug, thiserror::Error)]
pub enum SidecarCallError {
    #[error("calling the sidecar at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("the sidecar at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the sidecar at {url} sent an unreadable status: {message}")]
    Body { url: String, message: String },
}

impl Categorized for SidecarCallError {
    fn category(&self) -> Category {
        match self {
            Self::Transport { .. } | Self::Status { .. } => Category::Unavailable,
            Self::Body { .. } => Category::Internal,
        }
    }
}

/// The answer's future; boxed so the loop can hold sidecars of any kind behind one `dyn`.
pub type StatusFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<SidecarReport>, SidecarCallError>> + Send + 'a>>;

/// One site's sidecar. `Ok(None)`: it answered but has no view of its MySQL either (its own
/// probe failed). Implementations bound the call themselves; the loop bounds it again.
pub trait SidecarStatus: Send + Sync {
    fn status(&self) -> StatusFuture<'_>;
}
