//! Spec fields that need a conversion before rendering uses them (credential Secret names,
//! storage sizes written as integers or strings).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::api::failover_group::{MysqlFailoverGroupSpec, SiteSpec};

/// The Secret whose `MYSQL_ROOT_PASSWORD` key seeds the root account at first boot: the
/// operator role's Secret, or the legacy single-DSN Secret when `credentials` is unset.
pub(super) fn root_password_secret(spec: &MysqlFailoverGroupSpec) -> Option<&str> {
    spec.credentials
        .as_ref()
        .map(|c| c.operator_secret.as_str())
        .or(spec.secret_name.as_deref())
}

/// The site's requested data volume size, if the spec gives one.
pub(super) fn storage_size(site: &SiteSpec) -> Option<Quantity> {
    site.storage
        .as_ref()
        .and_then(|s| s.size.as_ref())
        .map(|size| Quantity(size.canonical().into_owned()))
}

/// The site's StorageClass, if the spec names one (else the cluster's default class).
pub(super) fn storage_class(site: &SiteSpec) -> Option<String> {
    site.storage
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
}
