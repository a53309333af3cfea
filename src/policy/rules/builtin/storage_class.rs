//! The StorageClass of every site's data PVC retains volumes, can expand, and binds late.

use serde_json::Value;

use super::{BuiltinCheck, get_known, violation};
use crate::policy::rules::condition::Violation;
use crate::policy::rules::context::{Lookup, ObjectContext};

pub struct StorageClassSettings;

impl BuiltinCheck for StorageClassSettings {
    fn cross_object(&self) -> bool {
        true
    }

    fn check(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<Violation> {
        let mut out = Vec::new();
        let sites = object
            .pointer("/spec/sites")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, site) in sites.iter().enumerate() {
            let Some(class) = site
                .pointer("/storage/storageClassName")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let pointer = format!("/spec/sites/{i}/storage/storageClassName");
            let Lookup::Found(sc) = get_known(ctx, "StorageClass", "", class) else {
                continue;
            };
            let field = |k: &str| sc.get(k).cloned().unwrap_or(Value::Null);
            if field("reclaimPolicy") != "Retain" {
                out.push(violation(
                    &pointer,
                    format!("StorageClass {class} reclaimPolicy is not Retain"),
                ));
            }
            if field("allowVolumeExpansion") != true {
                out.push(violation(
                    &pointer,
                    format!("StorageClass {class} does not allow volume expansion"),
                ));
            }
            if field("volumeBindingMode") != "WaitForFirstConsumer" {
                out.push(violation(
                    &pointer,
                    format!("StorageClass {class} volumeBindingMode is not WaitForFirstConsumer"),
                ));
            }
            let provisioner = field("provisioner");
            if matches!(provisioner.as_str(), Some(p) if p.contains("host-path") || p.contains("hostpath") || p == "kubernetes.io/no-provisioner")
            {
                out.push(violation(
                    &pointer,
                    format!("StorageClass {class} is node-local ({provisioner})"),
                ));
            }
        }
        out
    }
}
