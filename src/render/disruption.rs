//! The group's PodDisruptionBudget: `mysql-<group>`, `minAvailable: 1` over every MySQL
//! pod of the group, so a node drain never takes all sites down at once.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Owner, names};

/// The group's PodDisruptionBudget.
pub(crate) fn pdb(owner: &Owner<'_>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owner.meta(names::pdb(owner.name), names::group_labels(owner.name)),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names::group_selector(owner.name)),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}
