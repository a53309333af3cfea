//! A site's data volume: `mysql-<group>-<site>-data`, ReadWriteOnce, the site's
//! StorageClass and size (or the operator's default size); and the backup volume of each
//! PVC backup profile that names no claim of its own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Owner, RenderOptions, names, spec};
use crate::api::backup::StorageType;
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

/// The claims the group's PVC backup profiles without a `claimName` mount,
/// `mysql-<group>-backup-<profile>`: ReadWriteOnce, the profile's StorageClass and size (or
/// the default size a site's data volume gets). Not owned by the group: deleting the group, or removing
/// the profile, leaves the backups on their volume; the operator never deletes a claim.
pub(crate) fn backup_pvcs(
    owner: &Owner<'_>,
    options: &RenderOptions,
) -> Vec<PersistentVolumeClaim> {
    let Some(backup) = owner.spec.backup.as_ref() else {
        return Vec::new();
    };
    backup
        .profiles
        .iter()
        .filter(|profile| profile.storage.storage_type == StorageType::Pvc)
        .filter_map(|profile| {
            let pvc = profile.storage.pvc.as_ref()?;
            if pvc
                .claim_name
                .as_deref()
                .is_some_and(|name| !name.is_empty())
            {
                return None;
            }
            let size = pvc.size.as_ref().map_or_else(
                || options.default_storage_size.clone(),
                |size| Quantity(size.canonical().into_owned()),
            );
            let mut labels = names::group_labels(owner.name);
            labels.insert(names::LABEL_BACKUP_PROFILE.to_owned(), profile.name.clone());
            Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: super::backup::backup_claim(owner.name, profile),
                    namespace: Some(owner.namespace.to_owned()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: pvc.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                        limits: None,
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                status: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::backup::tests::group;

    fn claims(group: &crate::api::MysqlFailoverGroup) -> Vec<PersistentVolumeClaim> {
        backup_pvcs(&Owner::new(group).unwrap(), &RenderOptions::default())
    }

    #[test]
    fn a_pvc_profile_without_a_claim_gets_one_the_group_does_not_own() {
        let mut group = group();
        let provisioned = claims(&group);
        assert_eq!(provisioned.len(), 1, "only the PVC profile, not the S3 one");
        let claim = &provisioned[0];
        assert_eq!(
            claim.metadata.name.as_deref(),
            Some("mysql-orders-backup-local")
        );
        // Deleting the group must not take its backups with it.
        assert!(claim.metadata.owner_references.is_none());
        let labels = claim.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::LABEL_BACKUP_PROFILE], "local");
        let spec = claim.spec.as_ref().unwrap();
        assert_eq!(
            spec.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_owned()][..])
        );
        let size = &spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
        assert_eq!(size.0, "10Gi", "the operator's default size");

        let pvc = |group: &mut crate::api::MysqlFailoverGroup| {
            let profiles = &mut group.spec.backup.as_mut().unwrap().profiles;
            let local = profiles.iter_mut().find(|p| p.name == "local").unwrap();
            local.storage.pvc.as_mut().unwrap().clone()
        };
        let mut sized = pvc(&mut group);
        sized.size = serde_json::from_value(serde_json::json!("200Gi")).unwrap();
        sized.storage_class_name = Some("fast".to_owned());
        set_pvc(&mut group, sized);
        let spec = claims(&group)[0].spec.clone().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"].0,
            "200Gi"
        );

        // An empty claimName is no claim; a named one is the user's, never provisioned.
        let mut empty = pvc(&mut group);
        empty.claim_name = Some(String::new());
        set_pvc(&mut group, empty);
        assert_eq!(claims(&group).len(), 1);
        let mut named = pvc(&mut group);
        named.claim_name = Some("orders-backups".to_owned());
        set_pvc(&mut group, named);
        assert!(claims(&group).is_empty());
    }

    fn set_pvc(group: &mut crate::api::MysqlFailoverGroup, pvc: crate::api::backup::PvcStorage) {
        let profiles = &mut group.spec.backup.as_mut().unwrap().profiles;
        let local = profiles.iter_mut().find(|p| p.name == "local").unwrap();
        local.storage.pvc = Some(pvc);
    }
}
