//! Repository URLs: `s3://bucket/prefix` and `file:///absolute/path`.

use std::path::PathBuf;

use crate::error::{Categorized, Category};

/// Where a backup repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryUrl {
    S3 { bucket: String, prefix: String },
    File { dir: PathBuf },
}

/// A repository URL we cannot use, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository URL {url:?}: {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: &'static str,
}

impl Categorized for UrlError {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

impl RepositoryUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let error = |reason| UrlError {
            url: url.to_owned(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(error("no bucket: expected s3://bucket/prefix"));
            }
            let prefix =
                clean_segments(prefix).ok_or_else(|| error("'.' or '..' in the prefix"))?;
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(error("a file URL needs an absolute path: file:///path"));
            }
            clean_segments(path).ok_or_else(|| error("'.' or '..' in the path"))?;
            return Ok(Self::File {
                dir: PathBuf::from(path),
            });
        }
        Err(error("expected s3://bucket/prefix or file:///path"))
    }
}

/// The path's non-empty segments joined by `/`; `None` when one is `.` or `..`, which
/// would let a prefix step outside what it names.
fn clean_segments(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes() {
        assert_eq!(
            RepositoryUrl::parse("s3://bkp/prod//eu/").ok(),
            Some(RepositoryUrl::S3 {
                bucket: "bkp".into(),
                prefix: "prod/eu".into()
            })
        );
        assert_eq!(
            RepositoryUrl::parse("s3://bkp").ok(),
            Some(RepositoryUrl::S3 {
                bucket: "bkp".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            RepositoryUrl::parse("file:///var/backups").ok(),
            Some(RepositoryUrl::File {
                dir: PathBuf::from("/var/backups")
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            "s3:///prefix",
            "file://relative/dir",
            "file:///a/../etc",
            "s3://b/../x",
            "gs://bucket",
            "/plain/path",
            "",
        ] {
            assert!(RepositoryUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
