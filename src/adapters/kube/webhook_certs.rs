//! The self-managed webhook certificate's Kubernetes side: the one Secret that holds the
//! CA, the serving pair and the CA bundle, and the `caBundle` of every entry of the two
//! webhook configurations. Every write is conditional (the Secret's resourceVersion, a
//! JSON-patch `test` of the configuration's), so replicas that act at once never
//! overwrite each other blindly: the loser gets [`WebhookCertError::Conflict`] and looks
//! again.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::error::{Categorized, Category};

/// The field manager of these writes.
pub const FIELD_MANAGER: &str = "bloodraven-certs";

#[derive(Debug, thiserror::Error)]
pub enum WebhookCertError {
    /// Someone else wrote first; read again.
    #[error("{what}: changed concurrently")]
    Conflict { what: String },
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl Categorized for WebhookCertError {
    fn category(&self) -> Category {
        match self {
            Self::Conflict { .. } => Category::Unavailable,
            Self::NotFound { .. } | Self::Invalid { .. } => Category::Config,
            Self::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(s) if s.code == 401 || s.code == 403 => Category::Refused,
                _ => Category::Unavailable,
            },
        }
    }
}

fn api_err(what: String, source: kube::Error) -> WebhookCertError {
    match &source {
        kube::Error::Api(s) if s.code == 409 => WebhookCertError::Conflict { what },
        _ => WebhookCertError::Api {
            what,
            source: Box::new(source),
        },
    }
}

/// The Secret's contents: its data keys and its annotations, with the resourceVersion a
/// write must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertSecret {
    pub data: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
    /// `None`: the Secret does not exist yet (a write creates it).
    pub resource_version: Option<String>,
}

/// The Secret, read and written by name.
#[derive(Clone)]
pub struct CertSecretStore {
    api: Api<Secret>,
    namespace: String,
    name: String,
}

impl std::fmt::Debug for CertSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSecretStore")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CertSecretStore {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn what(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.name)
    }

    /// The Secret (`resource_version: None` when it does not exist).
    pub async fn read(&self) -> Result<CertSecret, WebhookCertError> {
        let Some(secret) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| api_err(self.what(), e))?
        else {
            return Ok(CertSecret::default());
        };
        Ok(CertSecret {
            data: secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            annotations: secret.metadata.annotations.unwrap_or_default(),
            resource_version: secret.metadata.resource_version,
        })
    }

    /// Writes `contents`: a create when it was read absent, else an update conditional on
    /// the resourceVersion read. Labels and other annotations are kept.
    pub async fn write(&self, contents: &CertSecret) -> Result<(), WebhookCertError> {
        let data: BTreeMap<String, ByteString> = contents
            .data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.clone())))
            .collect();
        match &contents.resource_version {
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        annotations: Some(contents.annotations.clone()),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    type_: Some("kubernetes.io/tls".to_owned()),
                    ..Secret::default()
                };
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                match self.api.create(&params, &secret).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        Err(WebhookCertError::Conflict { what: self.what() })
                    }
                    Err(e) => Err(api_err(self.what(), e)),
                }
            }
            Some(version) => {
                let mut secret = self
                    .api
                    .get(&self.name)
                    .await
                    .map_err(|e| api_err(self.what(), e))?;
                if secret.metadata.resource_version.as_deref() != Some(version.as_str()) {
                    return Err(WebhookCertError::Conflict { what: self.what() });
                }
                let mut annotations = secret.metadata.annotations.take().unwrap_or_default();
                annotations.extend(contents.annotations.clone());
                secret.metadata.annotations = Some(annotations);
                secret.data = Some(data);
                secret.string_data = None;
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                self.api
                    .replace(&self.name, &params, &secret)
                    .await
                    .map(|_| ())
                    .map_err(|e| api_err(self.what(), e))
            }
        }
    }
}

/// The two webhook configurations whose every entry carries the CA bundle.
#[derive(Clone)]
pub struct WebhookConfigs {
    validating: Api<ValidatingWebhookConfiguration>,
    mutating: Api<MutatingWebhookConfiguration>,
    validating_name: String,
    mutating_name: String,
}

impl std::fmt::Debug for WebhookConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfigs")
            .field("validating", &self.validating_name)
            .field("mutating", &self.mutating_name)
            .finish_non_exhaustive()
    }
}

impl WebhookConfigs {
    pub fn new(client: kube::Client, validating: &str, mutating: &str) -> Self {
        Self {
            validating: Api::all(client.clone()),
            mutating: Api::all(client),
            validating_name: validating.to_owned(),
            mutating_name: mutating.to_owned(),
        }
    }

    /// The `caBundle` of every entry of both configurations, in order (`None`: empty or
    /// unset), with each configuration's resourceVersion.
    pub async fn bundles(&self) -> Result<Published, WebhookCertError> {
        let v = self
            .validating
            .get_opt(&self.validating_name)
            .await
            .map_err(|e| {
                api_err(
                    format!("ValidatingWebhookConfiguration {}", self.validating_name),
                    e,
                )
            })?
            .ok_or_else(|| WebhookCertError::NotFound {
                kind: "ValidatingWebhookConfiguration",
                name: self.validating_name.clone(),
            })?;
        let m = self
            .mutating
            .get_opt(&self.mutating_name)
            .await
            .map_err(|e| {
                api_err(
                    format!("MutatingWebhookConfiguration {}", self.mutating_name),
                    e,
                )
            })?
            .ok_or_else(|| WebhookCertError::NotFound {
                kind: "MutatingWebhookConfiguration",
                name: self.mutating_name.clone(),
            })?;
        let bundle = |b: Option<&ByteString>| b.filter(|b| !b.0.is_empty()).map(|b| b.0.clone());
        Ok(Published {
            validating: v
                .webhooks
                .unwrap_or_default()
                .iter()
                .map(|w| bundle(w.client_config.ca_bundle.as_ref()))
                .collect(),
            mutating: m
                .webhooks
                .unwrap_or_default()
                .iter()
                .map(|w| bundle(w.client_config.ca_bundle.as_ref()))
                .collect(),
            validating_version: v.metadata.resource_version.unwrap_or_default(),
            mutating_version: m.metadata.resource_version.unwrap_or_default(),
        })
    }

    /// Sets `caBundle` of every entry of both configurations to `bundle` (PEM), with a
    /// JSON patch that first tests the resourceVersion `seen` was read at, so an entry
    /// added meanwhile is not left out.
    pub async fn publish(&self, seen: &Published, bundle: &[u8]) -> Result<(), WebhookCertError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
        let patch = |version: &str,
                     entries: usize|
         -> Result<json_patch::Patch, WebhookCertError> {
            let mut ops = vec![serde_json::json!({
                "op": "test", "path": "/metadata/resourceVersion", "value": version
            })];
            for i in 0..entries {
                ops.push(serde_json::json!({
                    "op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded
                }));
            }
            serde_json::from_value(serde_json::Value::Array(ops)).map_err(|e| {
                WebhookCertError::Invalid {
                    what: "the caBundle patch".to_owned(),
                    message: e.to_string(),
                }
            })
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let what_v = format!("ValidatingWebhookConfiguration {}", self.validating_name);
        self.validating
            .patch(
                &self.validating_name,
                &params,
                &Patch::<()>::Json(patch(&seen.validating_version, seen.validating.len())?),
            )
            .await
            .map_err(|e| test_failed_is_conflict(what_v, e))?;
        let what_m = format!("MutatingWebhookConfiguration {}", self.mutating_name);
        self.mutating
            .patch(
                &self.mutating_name,
                &params,
                &Patch::<()>::Json(patch(&seen.mutating_version, seen.mutating.len())?),
            )
            .await
            .map_err(|e| test_failed_is_conflict(what_m, e))?;
        Ok(())
    }
}

/// A failed JSON-patch `test` comes back as 422 (or 409): someone changed the object.
fn test_failed_is_conflict(what: String, e: kube::Error) -> WebhookCertError {
    match &e {
        kube::Error::Api(s) if s.code == 409 || s.code == 422 => {
            WebhookCertError::Conflict { what }
        }
        _ => api_err(what, e),
    }
}

/// The bundles the webhook configurations carry now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub validating: Vec<Option<Vec<u8>>>,
    pub mutating: Vec<Option<Vec<u8>>>,
    pub validating_version: String,
    pub mutating_version: String,
}

impl Published {
    /// Every entry's bundle, validating first.
    pub fn entries(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.validating
            .iter()
            .chain(&self.mutating)
            .map(Option::as_deref)
    }
}
