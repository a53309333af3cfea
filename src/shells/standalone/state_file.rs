//! The engine state as a JSON file, replaced atomically (write a temporary file, fsync,
//! rename, fsync the directory), so a crash leaves either the old or the new state.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use crate::failover::EngineState;
use crate::ports::state::{StateStore, StoreError};

#[derive(Debug, Clone)]
pub struct FileStateStore {
    path: PathBuf,
}

impl FileStateStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn io(&self, e: &std::io::Error) -> StoreError {
        StoreError::Io {
            location: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

impl StateStore for FileStateStore {
    // The file is small and written with fsync; blocking the loop's task for it is what
    // write-ahead means (no action runs before the state is durable), so the calls stay
    // synchronous inside the future.
    fn load(&self) -> BoxFuture<'_, Result<Option<EngineState>, StoreError>> {
        Box::pin(std::future::ready(self.read()))
    }

    fn save<'a>(&'a self, state: &'a EngineState) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(self.write(state)))
    }
}

impl FileStateStore {
    fn read(&self) -> Result<Option<EngineState>, StoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(&e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                location: self.path.display().to_string(),
                message: e.to_string(),
            })
    }

    fn write(&self, state: &EngineState) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Corrupt {
            location: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable once the directory entry is.
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| self.io(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let store = FileStateStore::new(dir.path().join("state.json"));
        assert!(matches!(store.read(), Ok(None)));
        let mut state = EngineState::new();
        state.active_site = Some("pdx".to_owned());
        assert!(store.write(&state).is_ok());
        state.next_action_id = 7;
        assert!(store.write(&state).is_ok());
        assert_eq!(store.read().ok().flatten(), Some(state));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_fresh_start() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("state.json");
        assert!(fs::write(&path, "{not json").is_ok());
        assert!(matches!(
            FileStateStore::new(path).read(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
