//! The leader creates each opted-in group's sidecar token Secret
//! (`mysql-<group>-sidecar-token`, key `token`) when it is absent, with 32 random bytes
//! from the system's generator, hex-encoded. The token of an existing Secret is never
//! written: a user may rotate it (the sidecars re-read it every tick, the endpoint within
//! `MISMATCH_REFRESH`). The one key the operator keeps current is `ca.crt`, its serving CA
//! bundle as `serve --sidecar-ca-file` holds it now, so a CA rotation reaches the sidecars.
//! The Secret is owned by the group and goes with it.

use std::fmt::Write as _;

use ring::rand::{SecureRandom as _, SystemRandom};

use std::path::Path;

use crate::adapters::kube::secrets::{self, Ensured, SecretError};
use crate::api::MysqlFailoverGroup;
use crate::api::annotations::sidecar_enabled;
use crate::render::sidecar_token::sidecar_token_secret;
use crate::render::{RenderError, names};

/// Bytes of randomness in a new token.
pub const TOKEN_BYTES: usize = 32;

/// The token Secret cannot be ensured.
#[derive(Debug, thiserror::Error)]
pub enum SidecarTokenError {
    #[error("the system's random generator failed")]
    Random,
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A new token: [`TOKEN_BYTES`] random bytes, hex-encoded.
pub fn new_token(random: &SystemRandom) -> Result<String, SidecarTokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    random
        .fill(&mut bytes)
        .map_err(|_| SidecarTokenError::Random)?;
    let mut text = String::with_capacity(TOKEN_BYTES * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    Ok(text)
}

/// Creates `group`'s token Secret if the group opted in to the sidecar and it is absent,
/// and keeps its `ca.crt` equal to the CA bundle in `operator_ca_file`; `None` when the
/// group did not opt in. A CA file that cannot be read leaves `ca.crt` as it is (the
/// sidecars keep trusting the last published CA) and is reported.
pub async fn ensure(
    client: &kube::Client,
    group: &MysqlFailoverGroup,
    operator_ca_file: Option<&Path>,
) -> Result<Option<Ensured>, SidecarTokenError> {
    if !sidecar_enabled(group) {
        return Ok(None);
    }
    let ca = match operator_ca_file {
        None => None,
        Some(path) => match tokio::fs::read(path).await {
            Ok(pem) if !pem.is_empty() => Some(pem),
            Ok(_) => {
                tracing::warn!(file = %path.display(), "the operator's CA file is empty: the sidecars keep the CA last published");
                None
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the operator's CA: the sidecars keep the CA last published");
                None
            }
        },
    };
    // The token is drawn before we know it is needed: a GET first and a draw only when
    // absent would cost the same, and this keeps one code path.
    let secret = sidecar_token_secret(group, &new_token(&SystemRandom::new())?, ca.as_deref())?;
    Ok(Some(
        secrets::ensure(client, &secret, &[names::SIDECAR_OPERATOR_CA_KEY]).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let random = SystemRandom::new();
        let a = new_token(&random).expect("random");
        let b = new_token(&random).expect("random");
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
