//! A minimal HTTP/1.1 client for the standalone API (`bloodraven failover`, the playground
//! and benchmarks): one request per connection, plain HTTP only.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::{Categorized, Category};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {0:?}: expected http://host:port")]
    BadUrl(String),
    #[error("{url}: {message}")]
    Io { url: String, message: String },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: malformed response")]
    Malformed { url: String },
}

impl Categorized for ClientError {
    fn category(&self) -> Category {
        match self {
            Self::BadUrl(_) => Category::InvalidInput,
            Self::Io { .. } | Self::Malformed { .. } => Category::Unavailable,
            Self::Timeout { .. } => Category::Timeout,
        }
    }
}

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Sends `method path_and_query` to `base` (`http://host:port`), bounded by `timeout`.
pub async fn request(
    base: &str,
    method: &str,
    path_and_query: &str,
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    let authority = base
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ClientError::BadUrl(base.to_owned()))?;
    let url = format!("{base}{path_and_query}");
    let exchange = async {
        let mut stream = TcpStream::connect(authority).await?;
        let head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => {
            return Err(ClientError::Io {
                url,
                message: e.to_string(),
            });
        }
        Err(_) => return Err(ClientError::Timeout { url }),
    };
    parse_response(&raw).ok_or(ClientError::Malformed { url })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Some(HttpResponse { status, body })
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = parse_response(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(
            plain.map(|r| (r.status, r.body)),
            Some((202, "ok".to_owned()))
        );
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(chunked.map(|r| r.body), Some("abcde".to_owned()));
        assert!(parse_response(b"garbage").is_none());
    }
}
