//! A site's data volume: `mysql-<group>-<site>-data`, ReadWriteOnce, the site's
//! StorageClass and size (or the operator's default size).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};

use super::{Owner, RenderOptions, names, spec};
use crate::api::failover_group::SiteSpec;

/// The site's PersistentVolumeClaim.
pub(crate) fn data_pvc(
    owner: &Owner<'_>,
    site: &SiteSpec,
    options: &RenderOptions,
) -> PersistentVolumeClaim {
    let requested =
        spec::storage_size(site).unwrap_or_else(|| options.default_storage_size.clone());
    PersistentVolumeClaim {
        metadata: owner.meta(
            names::data_pvc(owner.name, &site.name),
            names::site_labels(owner.name, &site.name),
        ),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: spec::storage_class(site),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), requested)])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}
