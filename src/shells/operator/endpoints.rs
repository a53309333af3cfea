//! Where the operator reaches each site's MySQL, and its sidecar.
//!
//! In a cluster that is the site's internal Service (`mysql-<group>-<site>-internal`),
//! which publishes the pod even while it is not ready. Where nothing runs pods (the
//! end-to-end tests, a laptop), an endpoint map stands in for those Services: a YAML or
//! JSON file of `"<namespace>/<group>/<site>": "host:port"` for MySQL, and
//! `"<namespace>/<group>/<site>/sidecar": "host:port"` for the sidecar.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Categorized, Category};
use crate::failover::address::HostPort;
use crate::render::deployment::SIDECAR_PORT;
use crate::render::names;

/// The MySQL port every rendered Service exposes.
pub const MYSQL_PORT: u16 = 3306;

/// The endpoint map file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointMapError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: entry {key:?}: {message}")]
    Entry {
        path: String,
        key: String,
        message: String,
    },
}

impl Categorized for EndpointMapError {
    fn category(&self) -> Category {
        Category::Config
    }
}

/// The last segment of a sidecar entry's key.
const SIDECAR_KEY: &str = "sidecar";

/// Site addresses: the map's entries where it has one, else the internal Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    overrides: BTreeMap<String, String>,
}

impl Endpoints {
    /// Internal Services only.
    pub fn services() -> Self {
        Self::default()
    }

    /// Reads an endpoint map file; every entry must be `<ns>/<group>/<site>` to `host:port`.
    pub fn from_file(path: &Path) -> Result<Self, EndpointMapError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| EndpointMapError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let overrides: BTreeMap<String, String> =
            serde_saphyr::from_str(&text).map_err(|e| EndpointMapError::Read {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        for (key, address) in &overrides {
            let entry = |message: String| EndpointMapError::Entry {
                path: shown.clone(),
                key: key.clone(),
                message,
            };
            let parts: Vec<&str> = key.split('/').collect();
            let shaped = match parts.as_slice() {
                [_, _, _] => true,
                [_, _, _, kind] => *kind == SIDECAR_KEY,
                _ => false,
            };
            if !shaped || parts.iter().any(|p| p.is_empty()) {
                return Err(entry(
                    "expected <namespace>/<group>/<site> or <namespace>/<group>/<site>/sidecar"
                        .to_owned(),
                ));
            }
            HostPort::parse(address).map_err(|e| entry(e.to_string()))?;
        }
        Ok(Self { overrides })
    }

    /// `host:port` of the sidecar of `site` of `namespace/group`.
    pub fn sidecar_address(&self, namespace: &str, group: &str, site: &str) -> String {
        self.overrides
            .get(&format!("{namespace}/{group}/{site}/{SIDECAR_KEY}"))
            .cloned()
            .unwrap_or_else(|| {
                format!(
                    "{}.{namespace}.svc:{SIDECAR_PORT}",
                    names::internal_service(group, site)
                )
            })
    }

    /// `host:port` of `site` of `namespace/group`.
    pub fn address(&self, namespace: &str, group: &str, site: &str) -> String {
        self.overrides
            .get(&format!("{namespace}/{group}/{site}"))
            .cloned()
            .unwrap_or_else(|| {
                format!(
                    "{}.{namespace}.svc:{MYSQL_PORT}",
                    names::internal_service(group, site)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_wins_and_the_internal_service_is_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("endpoints.yaml");
        std::fs::write(&path, "db/orders/iad: 127.0.0.1:3307\n").expect("write");
        let endpoints = Endpoints::from_file(&path).expect("valid map");
        assert_eq!(endpoints.address("db", "orders", "iad"), "127.0.0.1:3307");
        assert_eq!(
            endpoints.address("db", "orders", "pdx"),
            "mysql-orders-pdx-internal.db.svc:3306"
        );
    }

    #[test]
    fn bad_entries_are_located() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("endpoints.yaml");
        std::fs::write(&path, "orders/iad: 127.0.0.1:3307\n").expect("write");
        let e = Endpoints::from_file(&path).expect_err("bad key");
        assert!(e.to_string().contains("orders/iad"), "{e}");
        std::fs::write(&path, "db/orders/iad: nowhere\n").expect("write");
        assert!(Endpoints::from_file(&path).is_err());
        std::fs::write(&path, "db/orders/iad/other: 127.0.0.1:1\n").expect("write");
        assert!(Endpoints::from_file(&path).is_err());
        std::fs::write(&path, "db/orders//sidecar: 127.0.0.1:1\n").expect("write");
        assert!(Endpoints::from_file(&path).is_err());
    }

    #[test]
    fn sidecars_are_mapped_apart_from_mysql() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("endpoints.yaml");
        std::fs::write(
            &path,
            "db/orders/iad: 127.0.0.1:3307\ndb/orders/iad/sidecar: 127.0.0.1:9101\n",
        )
        .expect("write");
        let endpoints = Endpoints::from_file(&path).expect("valid map");
        assert_eq!(endpoints.address("db", "orders", "iad"), "127.0.0.1:3307");
        assert_eq!(
            endpoints.sidecar_address("db", "orders", "iad"),
            "127.0.0.1:9101"
        );
        assert_eq!(
            endpoints.sidecar_address("db", "orders", "pdx"),
            "mysql-orders-pdx-internal.db.svc:8443"
        );
    }
}
