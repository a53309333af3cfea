//! The credential Secrets a `MysqlFailoverGroup` names, read one by one with GET.
//!
//! The original watched every Secret in the cluster to notice rotations, which costs
//! memory and RBAC on every Secret. bloodraven reads only the Secrets a group references,
//! by name, on each reconcile (a resync period bounds how late a rotation is noticed), so
//! the operator needs `get` on Secrets and nothing more.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sha2::{Digest as _, Sha256};

use crate::adapters::mysql::Credentials;
use crate::adapters::mysql::RoleUsers;
use crate::api::failover_group::CredentialsSpec;
use crate::error::{Categorized, Category};

/// A credential Secret cannot be used. The variants name the reference's Event reasons.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secret {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no {key:?} key")]
    MissingKey {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error("Secret {namespace}/{name}: key {key:?} is not UTF-8")]
    NotText {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error("reading Secret {namespace}/{name}: {message}")]
    Unavailable {
        namespace: String,
        name: String,
        message: String,
    },
}

impl SecretError {
    /// The Event reason the reference uses for this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "SecretNotFound",
            Self::MissingKey { .. } | Self::NotText { .. } => "SecretMissingKey",
            Self::Unavailable { .. } => "CredentialReconcileFailed",
        }
    }
}

impl Categorized for SecretError {
    fn category(&self) -> Category {
        match self {
            Self::NotFound { .. } | Self::MissingKey { .. } | Self::NotText { .. } => {
                Category::Config
            }
            Self::Unavailable { .. } => Category::Unavailable,
        }
    }
}

/// Every account of one group, read from its Secrets.
#[derive(Debug, Clone)]
pub struct GroupCredentials {
    /// What the operator connects as.
    pub operator: Credentials,
    /// What replicas replicate as (`MYSQL_REPLICATION_USER`/`_PASSWORD` in the operator
    /// Secret, else the operator account).
    pub replication: Credentials,
    /// The per-role accounts to create on the primary.
    pub users: RoleUsers,
    /// A digest of everything above: a change means a Secret rotated.
    pub fingerprint: String,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the Secrets of `credentials` in `namespace`.
pub async fn read_credentials(
    client: &kube::Client,
    namespace: &str,
    credentials: &CredentialsSpec,
) -> Result<GroupCredentials, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let operator_data = fetch(&api, namespace, &credentials.operator_secret).await?;
    let operator = account(namespace, &credentials.operator_secret, &operator_data)?;
    let replication = match (
        text(
            namespace,
            &credentials.operator_secret,
            &operator_data,
            "MYSQL_REPLICATION_USER",
        )?,
        text(
            namespace,
            &credentials.operator_secret,
            &operator_data,
            "MYSQL_REPLICATION_PASSWORD",
        )?,
    ) {
        (Some(user), Some(password)) => Credentials::new(user, password),
        _ => operator.clone(),
    };
    let mut users = RoleUsers {
        operator: Some(operator.clone()),
        replication: (replication.user != operator.user).then(|| replication.clone()),
        ..RoleUsers::default()
    };
    let roles: [(&Option<String>, &mut Option<Credentials>); 4] = [
        (&credentials.app_secret, &mut users.app),
        (&credentials.read_only_secret, &mut users.read_only),
        (&credentials.monitor_secret, &mut users.monitor),
        (&credentials.backup_secret, &mut users.backup),
    ];
    for (secret, slot) in roles {
        if let Some(name) = secret {
            let data = fetch(&api, namespace, name).await?;
            *slot = Some(account(namespace, name, &data)?);
        }
    }
    let fingerprint = fingerprint(&users, &replication);
    Ok(GroupCredentials {
        operator,
        replication,
        users,
        fingerprint,
    })
}

/// The entries of Secret `name` (bounded like every read here); `stringData` counts.
pub async fn read_secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    fetch(&api, namespace, name).await
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// A Secret of that name was there, its managed keys as wanted; it was left alone.
    Existing,
    /// It was absent and is created now.
    Created,
    /// It was there and some of its managed keys are written now.
    Updated,
}

/// Creates `secret` unless a Secret of its name exists. Of an existing Secret only the
/// `managed` keys are written, and only where they differ from `secret`'s: every other key
/// is never written (a user may have rotated what it holds). A concurrent writer's win
/// (409) counts as existing; the next pass looks again. Bounded like every read here.
pub async fn ensure(
    client: &kube::Client,
    secret: &Secret,
    managed: &[&str],
) -> Result<Ensured, SecretError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let unavailable = |message: String| SecretError::Unavailable {
        namespace: namespace.clone(),
        name: name.clone(),
        message,
    };
    let bounded =
        |_: tokio::time::error::Elapsed| unavailable(format!("no answer in {REQUEST_TIMEOUT:?}"));
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let found = tokio::time::timeout(REQUEST_TIMEOUT, api.get_opt(&name))
        .await
        .map_err(bounded)?
        .map_err(|e| unavailable(e.to_string()))?;
    if let Some(found) = found {
        let Some(patch) = managed_patch(secret, &found, managed) else {
            return Ok(Ensured::Existing);
        };
        return match tokio::time::timeout(
            REQUEST_TIMEOUT,
            api.patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            ),
        )
        .await
        .map_err(bounded)?
        {
            Ok(_) => Ok(Ensured::Updated),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Ensured::Existing),
            Err(e) => Err(unavailable(e.to_string())),
        };
    }
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        api.create(&kube::api::PostParams::default(), secret),
    )
    .await
    .map_err(bounded)?
    {
        Ok(_) => Ok(Ensured::Created),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Ensured::Existing),
        Err(e) => Err(unavailable(e.to_string())),
    }
}

/// The merge patch that gives `found` the `managed` keys of `wanted` where they differ,
/// conditional on the version read; `None` when nothing differs. A managed key `wanted`
/// lacks is left as it is, never removed.
pub fn managed_patch(
    wanted: &Secret,
    found: &Secret,
    managed: &[&str],
) -> Option<serde_json::Value> {
    let empty = BTreeMap::new();
    let want = wanted.data.as_ref().unwrap_or(&empty);
    let have = found.data.as_ref().unwrap_or(&empty);
    let mut data = serde_json::Map::new();
    for key in managed {
        if let Some(value) = want.get(*key)
            && have.get(*key) != Some(value)
        {
            data.insert((*key).to_owned(), serde_json::to_value(value).ok()?);
        }
    }
    (!data.is_empty()).then(|| {
        serde_json::json!({
            "metadata": {"resourceVersion": found.metadata.resource_version},
            "data": data,
        })
    })
}

/// The text under `key` of Secret `namespace/name`, trimmed; `None` when the Secret, the
/// key or any non-blank UTF-8 text under it is missing.
pub async fn read_secret_text(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, SecretError> {
    match read_secret_data(client, namespace, name).await {
        Ok(data) => Ok(data
            .get(key)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)),
        Err(SecretError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn fetch(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let unavailable = |message: String| SecretError::Unavailable {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        message,
    };
    let secret = tokio::time::timeout(REQUEST_TIMEOUT, api.get_opt(name))
        .await
        .map_err(|_| unavailable(format!("no answer in {REQUEST_TIMEOUT:?}")))?
        .map_err(|e| unavailable(e.to_string()))?
        .ok_or_else(|| SecretError::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    // kube-apiserver folds stringData into data on write; a server that keeps it apart
    // (and a Secret created by a client that only ever wrote stringData) still counts.
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.entry(k).or_insert_with(|| v.into_bytes());
    }
    Ok(data)
}

fn text(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
    key: &'static str,
) -> Result<Option<String>, SecretError> {
    data.get(key)
        .map(|bytes| {
            String::from_utf8(bytes.clone()).map_err(|_| SecretError::NotText {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                key,
            })
        })
        .transpose()
}

fn account(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Credentials, SecretError> {
    let required = |key: &'static str| {
        text(namespace, name, data, key)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SecretError::MissingKey {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                key,
            })
    };
    Ok(Credentials::new(
        required("username")?,
        required("password")?,
    ))
}

fn fingerprint(users: &RoleUsers, replication: &Credentials) -> String {
    let mut digest = Sha256::new();
    let accounts = [
        &users.operator,
        &users.app,
        &users.read_only,
        &users.monitor,
        &users.backup,
    ];
    for account in accounts.into_iter().chain([&Some(replication.clone())]) {
        match account {
            Some(c) => {
                digest.update(c.user.as_bytes());
                digest.update([0]);
                digest.update(c.password.as_bytes());
                digest.update([1]);
            }
            None => digest.update([2]),
        }
    }
    digest
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;

    fn secret(data: &[(&str, &str)], version: &str) -> Secret {
        let mut secret = Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        secret.metadata.resource_version = Some(version.to_owned());
        secret
    }

    #[test]
    fn only_differing_managed_keys_are_patched_and_others_never() {
        let wanted = secret(&[("token", "new"), ("ca.crt", "CA2")], "");
        let found = secret(&[("token", "rotated"), ("ca.crt", "CA1")], "41");
        let patch = managed_patch(&wanted, &found, &["ca.crt"]).expect("a patch");
        assert_eq!(
            patch,
            serde_json::json!({
                "metadata": {"resourceVersion": "41"},
                "data": {"ca.crt": "Q0Ey"},
            })
        );
        let current = secret(&[("token", "rotated"), ("ca.crt", "CA2")], "42");
        assert_eq!(managed_patch(&wanted, &current, &["ca.crt"]), None);
        assert_eq!(managed_patch(&wanted, &found, &[]), None, "nothing managed");
        let without = secret(&[("token", "new")], "");
        assert_eq!(
            managed_patch(&without, &found, &["ca.crt"]),
            None,
            "a key not wanted is left, not removed"
        );
        let bare = Secret::default();
        assert!(managed_patch(&wanted, &bare, &["ca.crt"]).is_some());
    }
}
