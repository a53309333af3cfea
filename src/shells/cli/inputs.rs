//! Reading manifests from files, directories (recursively) and stdin.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::{fs, io};

use crate::policy::manifest::utf8_error_location;

/// One input's name (as shown in findings) and text.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: Result<String, Unreadable>,
}

/// Why an input (a file, or a directory under an argument) could not be read, and where:
/// a non-UTF-8 file names the line and column of its first invalid byte, as `POST /lint`
/// does; anything else is reported at `1:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

impl Unreadable {
    fn at_start(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            line: 1,
            column: 1,
        }
    }
}

/// A path that does not exist or cannot be listed: a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    pub path: String,
    pub message: String,
}

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Expands `paths` (`-` is stdin) into inputs in a stable order. Unreadable or non-UTF-8
/// files, and subdirectories that cannot be listed, become inputs with an error naming
/// them, so the rest is still linted and the run still exits 2.
pub fn collect(paths: &[String]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for p in paths {
        if p == "-" {
            let mut buf = Vec::new();
            let text = match io::stdin().read_to_end(&mut buf) {
                Ok(_) => decode(buf),
                Err(e) => Err(Unreadable::at_start(e.to_string())),
            };
            inputs.push(Input {
                name: "-".to_owned(),
                path: None,
                text,
            });
            continue;
        }
        let path = Path::new(p);
        let meta = fs::metadata(path).map_err(|e| InputError {
            path: p.clone(),
            message: e.to_string(),
        })?;
        if meta.is_dir() {
            // The argument itself must be listable; below it, one bad directory is reported
            // and skipped.
            let entries = fs::read_dir(path).map_err(|e| InputError {
                path: p.clone(),
                message: e.to_string(),
            })?;
            let mut found = Vec::new();
            walk(path, entries, &mut found);
            found.sort_by(|a, b| a.0.cmp(&b.0));
            inputs.extend(found.into_iter().map(|(path, problem)| match problem {
                None => read(path),
                Some(message) => Input {
                    name: path.display().to_string(),
                    path: Some(path),
                    text: Err(Unreadable::at_start(message)),
                },
            }));
        } else {
            inputs.push(read(path.to_path_buf()));
        }
    }
    Ok(inputs)
}

/// Collects the manifest files under `dir`, and every entry that could not be examined
/// with its error.
fn walk(dir: &Path, entries: fs::ReadDir, out: &mut Vec<(PathBuf, Option<String>)>) {
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.push((dir.to_path_buf(), Some(e.to_string())));
                continue;
            }
        };
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => {
                out.push((path, Some(e.to_string())));
                continue;
            }
        };
        if kind.is_dir() {
            match fs::read_dir(&path) {
                Ok(children) => walk(&path, children, out),
                Err(e) => out.push((path, Some(format!("cannot list directory: {e}")))),
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push((path, None));
        }
    }
}

fn read(path: PathBuf) -> Input {
    let text = match fs::read(&path) {
        Ok(bytes) => decode(bytes),
        Err(e) => Err(Unreadable::at_start(e.to_string())),
    };
    Input {
        name: path.display().to_string(),
        path: Some(path),
        text,
    }
}

fn decode(bytes: Vec<u8>) -> Result<String, Unreadable> {
    String::from_utf8(bytes).map_err(|e| {
        let (line, column) = utf8_error_location(e.as_bytes(), e.utf8_error().valid_up_to());
        Unreadable {
            message: "not valid UTF-8".to_owned(),
            line,
            column,
        }
    })
}
