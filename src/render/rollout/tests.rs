use serde_json::json;

use super::DeploymentState::{Absent, Current, Drifted};
use super::*;

fn site(name: &str, deployment: DeploymentState, ready: bool, replicating: bool) -> SiteView {
    SiteView {
        name: name.to_owned(),
        deployment,
        ready,
        replicating,
        candidate: true,
    }
}

fn healthy(name: &str, deployment: DeploymentState) -> SiteView {
    site(name, deployment, true, true)
}

/// The active primary is ready but (being the primary) never "replicating".
fn primary(name: &str, deployment: DeploymentState) -> SiteView {
    site(name, deployment, true, false)
}

fn ordered(sites: &[SiteView], previous: Option<UpdatePhase>) -> RolloutInput<'_> {
    RolloutInput {
        strategy: UpdateStrategy::OrderedUpdate,
        sites,
        active: Some("iad"),
        switchover_running: false,
        previous,
    }
}

#[test]
fn no_drift_applies_nothing_and_records_nothing() {
    let sites = [primary("iad", Current), healthy("pdx", Current)];
    assert_eq!(plan(&ordered(&sites, None)), RolloutPlan::default());
}

#[test]
fn an_update_in_progress_completes_once_nothing_is_drifted() {
    let sites = [healthy("iad", Current), primary("pdx", Current)];
    let plan = plan(&RolloutInput {
        active: Some("pdx"),
        ..ordered(&sites, Some(UpdatePhase::WaitOldPrimary))
    });
    assert_eq!(plan.phase, Some(UpdatePhase::Complete));
    assert!(plan.release.is_empty());
}

#[test]
fn new_deployments_are_created_whatever_else_is_held() {
    let sites = [
        primary("iad", Drifted),
        site("pdx", Current, false, false),
        site("sfo", Absent, false, false),
    ];
    let plan = plan(&ordered(&sites, None));
    assert_eq!(plan.release, ["sfo"]);
    assert_eq!(plan.phase, Some(UpdatePhase::WaitReplica));
}

#[test]
fn followers_go_first_one_at_a_time() {
    let sites = [
        primary("iad", Drifted),
        healthy("pdx", Drifted),
        healthy("sfo", Drifted),
    ];
    let first = plan(&ordered(&sites, None));
    assert_eq!(first.release, ["pdx"], "only the first follower");
    assert_eq!(first.phase, Some(UpdatePhase::UpdateReplica));
    assert_eq!(first.handoff, None);

    // pdx restarted on the new template and is not back yet: sfo waits.
    let sites = [
        primary("iad", Drifted),
        site("pdx", Current, false, false),
        healthy("sfo", Drifted),
    ];
    let waiting = plan(&ordered(&sites, first.phase));
    assert!(waiting.release.is_empty());
    assert_eq!(waiting.phase, Some(UpdatePhase::WaitReplica));
    assert!(waiting.waiting.unwrap().contains("pdx"));

    // Ready but not caught up yet still waits: replication is the point.
    let sites = [
        primary("iad", Drifted),
        site("pdx", Current, true, false),
        healthy("sfo", Drifted),
    ];
    assert!(plan(&ordered(&sites, first.phase)).release.is_empty());

    let sites = [
        primary("iad", Drifted),
        healthy("pdx", Current),
        healthy("sfo", Drifted),
    ];
    let second = plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)));
    assert_eq!(second.release, ["sfo"]);
}

#[test]
fn the_primary_is_handed_to_a_healthy_follower_before_its_update() {
    let sites = [primary("iad", Drifted), healthy("pdx", Current)];
    let plan = plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)));
    assert!(
        plan.release.is_empty(),
        "the primary is never restarted in place"
    );
    assert_eq!(plan.handoff.as_deref(), Some("pdx"));
    assert_eq!(plan.phase, Some(UpdatePhase::Failover));
}

#[test]
fn only_a_primary_candidate_takes_the_handoff() {
    let dr_only = SiteView {
        candidate: false,
        ..healthy("pdx", Current)
    };
    let sites = [
        primary("iad", Drifted),
        dr_only.clone(),
        healthy("sfo", Current),
    ];
    assert_eq!(
        plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)))
            .handoff
            .as_deref(),
        Some("sfo")
    );

    let sites = [primary("iad", Drifted), dr_only];
    let held = plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)));
    assert_eq!(held.handoff, None);
    assert!(
        held.release.is_empty(),
        "the primary is not restarted in place"
    );
    assert!(held.waiting.unwrap().contains("no primary candidate"));
}

#[test]
fn while_the_switchover_runs_nothing_moves() {
    let sites = [primary("iad", Drifted), healthy("pdx", Current)];
    let plan = plan(&RolloutInput {
        switchover_running: true,
        ..ordered(&sites, Some(UpdatePhase::Failover))
    });
    assert_eq!(plan.release, Vec::<String>::new());
    assert_eq!(plan.handoff, None, "asked once, not every reconcile");
    assert_eq!(plan.phase, Some(UpdatePhase::Failover));
}

#[test]
fn after_the_handoff_the_former_primary_is_updated_as_a_follower() {
    // pdx now leads; iad is a healthy replica on the old template.
    let sites = [healthy("iad", Drifted), primary("pdx", Current)];
    let input = RolloutInput {
        active: Some("pdx"),
        ..ordered(&sites, Some(UpdatePhase::Failover))
    };
    let update = plan(&input);
    assert_eq!(update.release, ["iad"]);
    assert_eq!(update.phase, Some(UpdatePhase::UpdateOldPrimary));

    let sites = [site("iad", Current, false, false), primary("pdx", Current)];
    let wait = plan(&RolloutInput {
        sites: &sites,
        previous: update.phase,
        ..input.clone()
    });
    assert_eq!(wait.phase, Some(UpdatePhase::WaitOldPrimary));

    let sites = [healthy("iad", Current), primary("pdx", Current)];
    let done = plan(&RolloutInput {
        sites: &sites,
        previous: wait.phase,
        ..input
    });
    assert_eq!(done.phase, Some(UpdatePhase::Complete));
}

#[test]
fn a_down_follower_is_updated_at_once_and_a_healthy_one_is_not_taken_beside_it() {
    let sites = [
        primary("iad", Drifted),
        site("pdx", Drifted, false, false),
        healthy("sfo", Drifted),
    ];
    let plan = plan(&ordered(&sites, None));
    assert_eq!(plan.release, ["pdx"]);
}

#[test]
fn a_broken_follower_blocks_the_rest_and_the_handoff() {
    // pdx is on the new template but never came back (a bad image, say): nothing else is
    // touched, least of all the primary.
    let sites = [
        primary("iad", Drifted),
        site("pdx", Current, false, false),
        healthy("sfo", Current),
    ];
    let plan = plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)));
    assert!(plan.release.is_empty());
    assert_eq!(plan.handoff, None);
    assert_eq!(plan.phase, Some(UpdatePhase::WaitReplica));
}

#[test]
fn fixing_a_bad_update_releases_the_broken_site_again() {
    // The user pushed a fix: pdx (down on the bad template) drifts again and goes first.
    let sites = [primary("iad", Drifted), site("pdx", Drifted, false, false)];
    let plan = plan(&ordered(&sites, Some(UpdatePhase::WaitReplica)));
    assert_eq!(plan.release, ["pdx"]);
}

#[test]
fn without_a_confirmed_primary_only_down_sites_are_updated() {
    let sites = [healthy("iad", Drifted), site("pdx", Drifted, false, false)];
    let input = RolloutInput {
        active: None,
        ..ordered(&sites, None)
    };
    assert_eq!(plan(&input).release, ["pdx"]);

    let sites = [primary("iad", Drifted), primary("pdx", Current)];
    let input = RolloutInput {
        active: None,
        ..ordered(&sites, None)
    };
    let held = plan(&input);
    assert!(held.release.is_empty());
    assert_eq!(held.handoff, None);
}

#[test]
fn a_one_site_group_updates_its_primary_in_place() {
    let sites = [primary("iad", Drifted)];
    let plan = plan(&ordered(&sites, None));
    assert_eq!(plan.release, ["iad"]);
    assert_eq!(plan.handoff, None);
}

#[test]
fn recreate_releases_everything_at_once() {
    let sites = [
        primary("iad", Drifted),
        site("pdx", Current, false, false),
        healthy("sfo", Drifted),
    ];
    let plan = plan(&RolloutInput {
        strategy: UpdateStrategy::Recreate,
        ..ordered(&sites, None)
    });
    assert_eq!(plan.release, ["iad", "sfo"]);
    assert_eq!(plan.handoff, None);
}

#[test]
fn phases_round_trip_and_unknown_text_is_no_phase() {
    for phase in [
        UpdatePhase::UpdateReplica,
        UpdatePhase::WaitReplica,
        UpdatePhase::Failover,
        UpdatePhase::UpdateOldPrimary,
        UpdatePhase::WaitOldPrimary,
        UpdatePhase::Complete,
    ] {
        assert_eq!(UpdatePhase::parse(phase.as_str()), Some(phase));
    }
    assert_eq!(UpdatePhase::parse(""), None);
    assert_eq!(UpdatePhase::parse("complete"), None);
}

#[test]
fn a_deployment_is_ready_once_its_current_generation_runs_a_ready_pod() {
    let live = |generation: i64, observed: i64, updated: i64, ready: i64| {
        json!({
            "metadata": {"generation": generation},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "readyReplicas": ready, "replicas": 1},
        })
    };
    assert!(deployment_ready(&live(3, 3, 1, 1)));
    assert!(
        !deployment_ready(&live(4, 3, 1, 1)),
        "new template not seen yet"
    );
    assert!(
        !deployment_ready(&live(3, 3, 0, 1)),
        "old pod still the ready one"
    );
    assert!(!deployment_ready(&live(3, 3, 1, 0)), "new pod not ready");
    assert!(
        !deployment_ready(&json!({"metadata": {"generation": 1}})),
        "no status"
    );
    let mut unavailable = live(3, 3, 1, 1);
    unavailable["status"]["unavailableReplicas"] = json!(1);
    assert!(!deployment_ready(&unavailable));
}
