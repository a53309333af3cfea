//! Reading manifests from files, directories (recursively) and stdin.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::{fs, io};

/// One input's name (as shown in findings) and text.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: Result<String, String>,
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
/// files become inputs with an error so the rest is still linted.
pub fn collect(paths: &[String]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for p in paths {
        if p == "-" {
            let mut buf = Vec::new();
            let text = io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| e.to_string())
                .and_then(|_| String::from_utf8(buf).map_err(|_| "not valid UTF-8".to_owned()));
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
            let mut files = Vec::new();
            walk(path, &mut files).map_err(|e| InputError {
                path: p.clone(),
                message: e.to_string(),
            })?;
            files.sort();
            inputs.extend(files.into_iter().map(read));
        } else {
            inputs.push(read(path.to_path_buf()));
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn read(path: PathBuf) -> Input {
    let text = fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "not valid UTF-8".to_owned()));
    Input {
        name: path.display().to_string(),
        path: Some(path),
        text,
    }
}
