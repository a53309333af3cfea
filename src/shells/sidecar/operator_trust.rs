//! The client for an `https` operator endpoint, trusting only `operator.caFile`.
//!
//! The operator publishes its serving CA into the group's token Secret and keeps it
//! current across rotations; the kubelet then swaps the mounted file. So the file is read
//! again on every poll (a few KiB) and the client rebuilt only when the bytes change: a
//! rotation reaches the sidecar without a restart. A file that cannot be read or parsed
//! keeps the last good client (a half-written mount must not cost the operator's
//! answer); with none yet, the operator call fails, which the guard counts as no contact,
//! and says why.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// The operator client, pinned to the CA in one file.
#[derive(Debug)]
pub struct OperatorTrust {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The bytes the current client was built from, and the client.
    current: Option<(Vec<u8>, reqwest::Client)>,
    /// The bytes last refused, so a bad file is reported once, not on every poll.
    refused: Option<Vec<u8>>,
}

impl OperatorTrust {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(State::default()),
        }
    }

    /// The client for the operator's CA as the file holds it now (or as it last held a
    /// usable one).
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let read = std::fs::read(&self.path);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let problem = match read {
            Ok(pem) => {
                if let Some((bytes, client)) = &state.current
                    && *bytes == pem
                {
                    return Ok(client.clone());
                }
                match build(&pem) {
                    Ok(client) => {
                        if state.current.is_some() {
                            tracing::info!(file = %self.path.display(), "the operator's CA changed; using the new one");
                        }
                        state.current = Some((pem, client.clone()));
                        state.refused = None;
                        return Ok(client);
                    }
                    Err(e) => {
                        if state.refused.as_ref() != Some(&pem) {
                            tracing::warn!(file = %self.path.display(), error = %e, "the operator's CA file is not usable; keeping the last good one");
                            state.refused = Some(pem);
                        }
                        e
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        state.current.as_ref().map_or_else(
            || {
                Err(format!(
                    "the operator's CA {}: {problem}",
                    self.path.display()
                ))
            },
            |(_, client)| Ok(client.clone()),
        )
    }
}

fn build(pem: &[u8]) -> Result<reqwest::Client, String> {
    crate::adapters::sidecar::HttpSidecar::client(super::monitor::HTTP_TIMEOUT, Some(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::shells::certs::generate_certs(dir.path(), &["localhost".to_owned()], &[], None)
            .expect("generates");
        std::fs::read_to_string(dir.path().join("ca.crt")).expect("ca.crt")
    }

    #[test]
    fn a_bad_or_missing_file_keeps_the_last_good_client_and_none_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("operator-ca.crt");
        let trust = OperatorTrust::new(path.clone());
        let e = trust.client().expect_err("no file yet");
        assert!(e.contains("operator-ca.crt"), "{e}");
        std::fs::write(&path, "not a certificate").expect("write");
        assert!(trust.client().is_err(), "garbage is no CA");
        std::fs::write(&path, ca_pem()).expect("write");
        trust.client().expect("a CA");
        std::fs::write(&path, "half-written").expect("write");
        trust.client().expect("the last good client stays");
        std::fs::remove_file(&path).expect("remove");
        trust.client().expect("the last good client stays");
    }
}
