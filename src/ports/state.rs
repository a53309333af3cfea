//! The state store port: where the failover core's state is persisted between polls,
//! write-ahead of every action.

use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::error::{Categorized, Category};
use crate::failover::EngineState;

/// Loading or saving the engine state failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {location}: {message}")]
    Io { location: String, message: String },
    #[error("state store {location} holds invalid state: {message}")]
    Corrupt { location: String, message: String },
    /// Another writer (a newer leader) saved its state since this store last did: this
    /// replica is deposed and must act on nothing.
    #[error("state store {location}: superseded by {writer:?} at revision {revision}; not acting")]
    Superseded {
        location: String,
        writer: String,
        revision: i64,
    },
}

impl Categorized for StoreError {
    fn category(&self) -> Category {
        match self {
            Self::Io { .. } => Category::Unavailable,
            Self::Corrupt { .. } => Category::Config,
            Self::Superseded { .. } => Category::Refused,
        }
    }
}

/// Durable storage for [`EngineState`]. `save` must not return before the state is durable
/// enough that a restarted controller reads it back: the loop executes actions only after
/// it returned. The loop calls `save` only when the state changed.
///
/// A store may refuse a save (the operator's status write carries a resourceVersion
/// precondition, so a deposed leader's write fails); the loop then acts on nothing.
pub trait StateStore: Send + Sync {
    /// The last saved state, or `None` on first start.
    fn load(&self) -> BoxFuture<'_, Result<Option<EngineState>, StoreError>>;
    fn save<'a>(&'a self, state: &'a EngineState) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// A store that lives as long as the process: tests and throw-away runs.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    state: Mutex<Option<EngineState>>,
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl MemoryStateStore {
    /// The stored state, without going through the port.
    pub fn current(&self) -> Result<Option<EngineState>, StoreError> {
        Ok(self
            .state
            .lock()
            .map_err(|_| StoreError::Io {
                location: "memory".to_owned(),
                message: "lock poisoned".to_owned(),
            })?
            .clone())
    }

    fn put(&self, state: &EngineState) -> Result<(), StoreError> {
        *self.state.lock().map_err(|_| StoreError::Io {
            location: "memory".to_owned(),
            message: "lock poisoned".to_owned(),
        })? = Some(state.clone());
        Ok(())
    }
}

impl StateStore for MemoryStateStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<EngineState>, StoreError>> {
        Box::pin(std::future::ready(self.current()))
    }

    fn save<'a>(&'a self, state: &'a EngineState) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(self.put(state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_returns_what_was_saved() {
        let store = MemoryStateStore::new();
        assert_eq!(store.load().await.ok().flatten(), None);
        let mut state = EngineState::new();
        state.active_site = Some("iad".to_owned());
        store.save(&state).await.ok();
        assert_eq!(store.load().await.ok().flatten(), Some(state));
    }
}
