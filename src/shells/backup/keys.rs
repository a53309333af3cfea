//! The backup's key: derived once per backup (Argon2id is slow on purpose), recorded in
//! the manifest as parameters and salt, and derived again from the passphrase to read.

use std::sync::Arc;

use super::error::BackupError;
use crate::backup::codec::{Codec, Protection};
use crate::backup::manifest::EncryptionParams;
use crate::backup::seal::{KdfParams, MasterKey};

/// 1 GiB: sixteen times the default cost.
const MAX_MEMORY_KIB: u32 = 1 << 20;

/// The codec a new backup writes with, and what its manifest records about it.
pub async fn sealing(
    passphrase: Option<Vec<u8>>,
) -> Result<(Codec, Option<EncryptionParams>), BackupError> {
    let Some(passphrase) = passphrase else {
        return Ok((Codec::new(Protection::Plain), None));
    };
    let master =
        tokio::task::spawn_blocking(move || MasterKey::generate(&passphrase, KdfParams::STRONG))
            .await
            .map_err(|e| BackupError::Runtime(format!("key derivation task: {e}")))??;
    let kdf = master.kdf();
    let params = EncryptionParams {
        cipher: "AES-256-GCM".to_owned(),
        kdf: "argon2id".to_owned(),
        memory_kib: kdf.memory_kib,
        passes: kdf.passes,
        lanes: kdf.lanes,
        salt: crate::digest::hex(&master.salt()),
    };
    Ok((
        Codec::new(Protection::Sealed(Arc::new(master))),
        Some(params),
    ))
}

/// The codec that reads what was written under `params` (plain when `None`).
pub async fn opening(
    params: Option<&EncryptionParams>,
    passphrase: Option<Vec<u8>>,
) -> Result<Codec, BackupError> {
    let Some(params) = params else {
        return Ok(Codec::new(Protection::Plain));
    };
    let Some(passphrase) = passphrase else {
        return Err(BackupError::Input(
            "the backup is encrypted: give --passphrase-file or $BLOODRAVEN_BACKUP_PASSPHRASE"
                .to_owned(),
        ));
    };
    // The manifest is not authenticated: cap what it may make us spend before the key
    // check can tell a forged manifest from a real one.
    if params.memory_kib > MAX_MEMORY_KIB || params.passes > 16 {
        return Err(BackupError::Input(format!(
            "encryption parameters ask for {} KiB and {} passes: more than this build will spend ({MAX_MEMORY_KIB} KiB, 16 passes)",
            params.memory_kib, params.passes
        )));
    }
    let salt = parse_salt(&params.salt)?;
    let kdf = KdfParams {
        memory_kib: params.memory_kib,
        passes: params.passes,
        lanes: params.lanes,
    };
    let master = tokio::task::spawn_blocking(move || MasterKey::derive(&passphrase, kdf, salt))
        .await
        .map_err(|e| BackupError::Runtime(format!("key derivation task: {e}")))??;
    Ok(Codec::new(Protection::Sealed(Arc::new(master))))
}

fn parse_salt(hex: &str) -> Result<[u8; 16], BackupError> {
    let bad = || BackupError::Input(format!("encryption salt {hex:?} is not 32 hex digits"));
    if hex.len() != 32 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut salt = [0u8; 16];
    for (i, byte) in salt.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(salt)
}
