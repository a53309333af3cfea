//! `bloodraven copy-self --to DIR/bloodraven`: the first half of the two-image pattern.
//!
//! The operator's image is distroless (no shell, no `cp`), and the MySQL image has
//! `mysqlbinlog` and `mysql` but not this binary. A pod that needs both (a point-in-time
//! restore, a verification that replays binary logs, the binary-log archiver) runs this
//! command in an init container on the operator's image to put the static binary into a
//! shared `emptyDir`, and its working container on the MySQL image runs that copy
//! ([`crate::render::tools`]).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CopySelfArgs {
    /// Where to put the copy (a file path; its directory must exist).
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
}

/// Why the copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopySelfError {
    #[error("cannot find this program's own file: {0}")]
    OwnPath(std::io::Error),
    #[error("--to {0}: names no file in a directory")]
    NoFileName(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: &CopySelfArgs) -> ExitCode {
    match copy_self(&args.to) {
        Ok(bytes) => {
            tracing::info!(to = %args.to.display(), bytes, "copied the bloodraven binary");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bloodraven copy-self: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the running executable to `to`, mode 0755. The copy is written beside `to` and
/// renamed over it once complete and synced, so a container that starts on `to` never
/// runs half a binary (an init container restarted mid-copy leaves only the temporary).
pub fn copy_self(to: &Path) -> Result<u64, CopySelfError> {
    let own = std::env::current_exe().map_err(CopySelfError::OwnPath)?;
    copy_executable(&own, to)
}

fn copy_executable(from: &Path, to: &Path) -> Result<u64, CopySelfError> {
    let name = to
        .file_name()
        .ok_or_else(|| CopySelfError::NoFileName(to.to_owned()))?;
    let temporary = to.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CopySelfError::Io { path, source }
    };
    let bytes = fs::read(from).map_err(io(from))?;
    let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&bytes).map_err(io(&temporary))?;
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    drop(file);
    fs::rename(&temporary, to).map_err(io(to))?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_whole_executable_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("source");
        fs::write(&from, b"#!/bin/sh\necho hi\n").unwrap();
        let to = dir.path().join("bloodraven");
        fs::write(&to, b"stale").unwrap();
        assert_eq!(copy_executable(&from, &to).unwrap(), 18);
        assert_eq!(fs::read(&to).unwrap(), b"#!/bin/sh\necho hi\n");
        let mode = fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        // No temporary left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("source");
        fs::write(&from, b"x").unwrap();
        let err = copy_executable(&from, &dir.path().join("nope/bloodraven")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
