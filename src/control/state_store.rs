//! Where the engine state is persisted between polls (write-ahead of every action).

use std::sync::Mutex;

use crate::engine::failover::EngineState;
use crate::error::{Categorized, Category};

/// Loading or saving the engine state failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {location}: {message}")]
    Io { location: String, message: String },
    #[error("state store {location} holds invalid state: {message}")]
    Corrupt { location: String, message: String },
}

impl Categorized for StoreError {
    fn category(&self) -> Category {
        match self {
            Self::Io { .. } => Category::Unavailable,
            Self::Corrupt { .. } => Category::Config,
        }
    }
}

/// Durable storage for [`EngineState`]. `save` must not return before the state is durable
/// enough that a restarted controller reads it back: the loop executes actions only after
/// it returned.
pub trait StateStore: Send + Sync {
    /// The last saved state, or `None` on first start.
    fn load(&self) -> Result<Option<EngineState>, StoreError>;
    fn save(&self, state: &EngineState) -> Result<(), StoreError>;
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

impl StateStore for MemoryStateStore {
    fn load(&self) -> Result<Option<EngineState>, StoreError> {
        Ok(self
            .state
            .lock()
            .map_err(|_| StoreError::Io {
                location: "memory".to_owned(),
                message: "lock poisoned".to_owned(),
            })?
            .clone())
    }

    fn save(&self, state: &EngineState) -> Result<(), StoreError> {
        *self.state.lock().map_err(|_| StoreError::Io {
            location: "memory".to_owned(),
            message: "lock poisoned".to_owned(),
        })? = Some(state.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_returns_what_was_saved() {
        let store = MemoryStateStore::new();
        assert_eq!(store.load().ok().flatten(), None);
        let mut state = EngineState::new();
        state.active_site = Some("iad".to_owned());
        store.save(&state).ok();
        assert_eq!(store.load().ok().flatten(), Some(state));
    }
}
