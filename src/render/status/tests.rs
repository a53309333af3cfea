#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::api::failover_group_status::{BackupScheduleStatus, FailoverStateRecord};
use crate::failover::gtid::GtidSet;
use crate::failover::status::{ConditionType, PlannedFailoverStatus as EnginePlanned};
use crate::failover::{
    FailoverKind, FailoverRecord, PlannedPhase, PlannedReason, SiteRole, SiteState,
};

const T0: u64 = 1_780_000_000_000;
const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

fn gtid(range: &str) -> GtidSet {
    GtidSet::parse(&format!("{UUID}:{range}")).unwrap()
}

fn engine_site(name: &str, state: SiteState) -> EngineSite {
    EngineSite {
        name: name.to_owned(),
        role: SiteRole::PrimaryCandidate,
        state,
        last_seen: Some(Timestamp(T0)),
        read_only: Some(state != SiteState::Writable),
        gtid_executed: Some(gtid("1-10")),
        replicating: state == SiteState::ReadOnly,
        seconds_behind_source: (state == SiteState::ReadOnly).then_some(3),
        source_host: (state == SiteState::ReadOnly)
            .then(|| "mysql-orders-iad-internal:3306".to_owned()),
        divergent_gtid: None,
        divergent_transaction_count: 0,
        recovery_state: RecoveryLabel::None,
        source_convergence: None,
    }
}

fn condition(kind: ConditionType, on: bool, reason: &str) -> EngineCondition {
    EngineCondition {
        kind,
        status: if on { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: "active site: iad".to_owned(),
    }
}

fn healthy(active: &str) -> GroupStatus {
    let (a, b) = if active == "iad" {
        ("iad", "pdx")
    } else {
        ("pdx", "iad")
    };
    let mut sites = vec![
        engine_site(a, SiteState::Writable),
        engine_site(b, SiteState::ReadOnly),
    ];
    sites.sort_by(|x, y| x.name.cmp(&y.name));
    GroupStatus {
        active_site: Some(active.to_owned()),
        sites,
        last_failover: None,
        planned_failover: None,
        conditions: vec![
            condition(ConditionType::Ready, true, "Healthy"),
            condition(ConditionType::Degraded, false, "Healthy"),
            condition(ConditionType::RecoveryPending, false, "None"),
        ],
    }
}

fn degraded(active: &str) -> GroupStatus {
    let mut status = healthy(active);
    status.conditions[0] = condition(ConditionType::Ready, false, "Degraded");
    status.conditions[1] = condition(ConditionType::Degraded, true, "Degraded");
    status
}

fn cond<'a>(status: &'a MysqlFailoverGroupStatus, kind: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == kind).unwrap()
}

#[test]
fn sites_carry_the_engine_observations() {
    let mut engine = healthy("iad");
    engine.sites[1].divergent_gtid = Some(gtid("11-12"));
    engine.sites[1].divergent_transaction_count = 2;
    engine.sites[1].recovery_state = RecoveryLabel::RecoveryBlocked;
    let status = project(
        &engine,
        &MysqlFailoverGroupStatus::default(),
        Some(4),
        Timestamp(T0),
    );
    assert_eq!(status.active_site.as_deref(), Some("iad"));
    let iad = &status.sites[0];
    assert_eq!(iad.name, "iad");
    assert_eq!(iad.state.as_deref(), Some("writable"));
    assert_eq!(iad.replicating, Some(false));
    assert_eq!(
        iad.gtid_executed.as_deref(),
        Some(format!("{UUID}:1-10").as_str())
    );
    assert_eq!(iad.last_seen.as_deref(), Some("2026-05-28T20:26:40Z"));
    assert_eq!(iad.divergent_gtid, None);
    assert_eq!(iad.divergent_transaction_count, None);
    assert_eq!(iad.recovery_state, None);
    let pdx = &status.sites[1];
    assert_eq!(pdx.state.as_deref(), Some("read-only"));
    assert_eq!(pdx.replicating, Some(true));
    assert_eq!(pdx.seconds_behind_source, Some(3));
    assert_eq!(
        pdx.source_host.as_deref(),
        Some("mysql-orders-iad-internal:3306")
    );
    assert_eq!(
        pdx.divergent_gtid.as_deref(),
        Some(format!("{UUID}:11-12").as_str())
    );
    assert_eq!(pdx.divergent_transaction_count, Some(2));
    assert_eq!(pdx.recovery_state.as_deref(), Some("RecoveryBlocked"));
    for (engine_state, text) in [
        (SiteState::Unreachable, "unreachable"),
        (SiteState::Unknown, "unknown"),
    ] {
        engine.sites[1].state = engine_state;
        let status = project(
            &engine,
            &MysqlFailoverGroupStatus::default(),
            None,
            Timestamp(T0),
        );
        assert_eq!(status.sites[1].state.as_deref(), Some(text));
    }
}

#[test]
fn the_failover_record_is_projected_and_kept_when_the_engine_has_none() {
    let mut engine = healthy("pdx");
    engine.last_failover = Some(FailoverRecord {
        at: Timestamp(T0 + 1_500),
        target: "pdx".to_owned(),
        promotion_gtid: Some(gtid("1-10")),
        kind: FailoverKind::Emergency,
        previous: Some("iad".to_owned()),
    });
    let status = project(
        &engine,
        &MysqlFailoverGroupStatus::default(),
        None,
        Timestamp(T0),
    );
    assert_eq!(
        status.last_failover.as_deref(),
        Some("2026-05-28T20:26:41Z")
    );
    assert_eq!(status.last_failover_target.as_deref(), Some("pdx"));
    assert_eq!(
        status.promotion_gtid_executed.as_deref(),
        Some(format!("{UUID}:1-10").as_str())
    );
    // A fresh engine state beside a status that already has a record keeps the record.
    let kept = project(&healthy("pdx"), &status, None, Timestamp(T0));
    assert_eq!(kept.last_failover, status.last_failover);
    assert_eq!(kept.last_failover_target, status.last_failover_target);
    assert_eq!(kept.promotion_gtid_executed, status.promotion_gtid_executed);
}

#[test]
fn planned_failover_has_a_duration_only_once_it_is_over() {
    let mut engine = healthy("iad");
    let mut planned = EnginePlanned {
        phase: PlannedPhase::WaitingForLag,
        reason: None,
        target: "pdx".to_owned(),
        source_primary: Some("iad".to_owned()),
        source_gtid_at_fence: Some(gtid("1-10")),
        target_gtid_at_promotion: None,
        start_time: Timestamp(T0),
        completion_time: None,
        duration_seconds: Some(1.5),
        transactions_lost: None,
        retry_after: None,
        message: String::new(),
    };
    engine.planned_failover = Some(planned.clone());
    let running = project(
        &engine,
        &MysqlFailoverGroupStatus::default(),
        None,
        Timestamp(T0 + 1_500),
    );
    let p = running.planned_failover.as_ref().unwrap();
    assert_eq!(p.phase.as_deref(), Some("WaitingForLag"));
    assert_eq!(p.target.as_deref(), Some("pdx"));
    assert_eq!(p.source_primary.as_deref(), Some("iad"));
    assert_eq!(p.start_time.as_deref(), Some("2026-05-28T20:26:40Z"));
    assert_eq!(p.duration_seconds, None);
    assert_eq!(p.message, None);

    planned.phase = PlannedPhase::Failed;
    planned.reason = Some(PlannedReason::LagTimeout);
    planned.completion_time = Some(Timestamp(T0 + 31_000));
    planned.transactions_lost = Some(0);
    planned.message = "target did not catch up".to_owned();
    engine.planned_failover = Some(planned);
    let done = project(&engine, &running, None, Timestamp(T0 + 31_000));
    let p = done.planned_failover.as_ref().unwrap();
    assert_eq!(p.phase.as_deref(), Some("Failed"));
    assert_eq!(p.reason.as_deref(), Some("LagTimeout"));
    assert_eq!(p.duration_seconds, Some(31));
    assert_eq!(p.transactions_lost, Some(0));
    assert_eq!(p.completion_time.as_deref(), Some("2026-05-28T20:27:11Z"));
    assert_eq!(p.message.as_deref(), Some("target did not catch up"));
}

#[test]
fn conditions_keep_their_transition_time_until_their_status_changes() {
    let first = project(
        &healthy("iad"),
        &MysqlFailoverGroupStatus::default(),
        Some(1),
        Timestamp(T0),
    );
    let ready_since = cond(&first, "Ready").last_transition_time.clone();
    assert_eq!(ready_since.0.to_string(), "2026-05-28T20:26:40Z");
    assert_eq!(cond(&first, "Ready").status, "True");
    assert_eq!(cond(&first, "Degraded").reason, "Healthy");
    assert_eq!(cond(&first, "RecoveryPending").status, "False");
    assert_eq!(cond(&first, "Ready").observed_generation, Some(1));

    let later = project(&healthy("iad"), &first, Some(1), Timestamp(T0 + 600_000));
    assert_eq!(later, first, "nothing changed, nothing moves");

    let broken = project(&degraded("iad"), &later, Some(1), Timestamp(T0 + 700_000));
    assert_eq!(cond(&broken, "Ready").status, "False");
    assert_eq!(
        cond(&broken, "Ready").last_transition_time.0.to_string(),
        "2026-05-28T20:38:20Z"
    );
    assert_eq!(cond(&broken, "Degraded").reason, "Degraded");
    // RecoveryPending stayed False: its transition time did not move.
    assert_eq!(
        cond(&broken, "RecoveryPending").last_transition_time,
        cond(&first, "RecoveryPending").last_transition_time
    );
}

#[test]
fn conditions_of_other_writers_are_kept() {
    let previous = MysqlFailoverGroupStatus {
        conditions: vec![Condition {
            type_: "Bootstrapping".to_owned(),
            status: "True".to_owned(),
            reason: "Cloning".to_owned(),
            message: String::new(),
            last_transition_time: Time(timestamp(Timestamp(T0))),
            observed_generation: None,
        }],
        ..MysqlFailoverGroupStatus::default()
    };
    let next = project(&healthy("iad"), &previous, Some(2), Timestamp(T0 + 1_000));
    let types: Vec<&str> = next.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "Degraded", "RecoveryPending", "Bootstrapping"]
    );
    assert_eq!(cond(&next, "Bootstrapping"), &previous.conditions[0]);
}

#[test]
fn topology_generation_counts_active_site_changes() {
    let none = GroupStatus {
        active_site: None,
        ..healthy("iad")
    };
    let start = project(
        &none,
        &MysqlFailoverGroupStatus::default(),
        None,
        Timestamp(T0),
    );
    assert_eq!(start.topology_generation, None);
    let adopted = project(&healthy("iad"), &start, None, Timestamp(T0));
    assert_eq!(adopted.topology_generation, Some(1));
    let same = project(&healthy("iad"), &adopted, None, Timestamp(T0));
    assert_eq!(same.topology_generation, Some(1));
    let promoted = project(&healthy("pdx"), &same, None, Timestamp(T0));
    assert_eq!(promoted.topology_generation, Some(2));
    assert_eq!(promoted.active_site.as_deref(), Some("pdx"));
}

#[test]
fn fields_of_other_writers_are_carried_over() {
    let previous = MysqlFailoverGroupStatus {
        backup_schedules: vec![BackupScheduleStatus {
            name: "nightly".to_owned(),
            ..BackupScheduleStatus::default()
        }],
        failover_state: Some(FailoverStateRecord {
            revision: 7,
            writer: "replica-a".to_owned(),
            state: serde_json::json!({"activeSite": "iad"}),
        }),
        observed_generation: Some(3),
        ..MysqlFailoverGroupStatus::default()
    };
    let next = project(&healthy("iad"), &previous, None, Timestamp(T0));
    assert_eq!(next.backup_schedules, previous.backup_schedules);
    assert_eq!(next.failover_state, previous.failover_state);
    assert_eq!(next.observed_generation, Some(3));
    assert_eq!(
        project(&healthy("iad"), &previous, Some(4), Timestamp(T0)).observed_generation,
        Some(4)
    );
}

#[test]
fn an_idle_group_is_never_rewritten_and_a_busy_one_at_most_once_a_minute() {
    let stored = project(
        &healthy("iad"),
        &MysqlFailoverGroupStatus::default(),
        Some(1),
        Timestamp(T0),
    );
    assert!(!worth_writing(&stored, &stored, Timestamp(T0)));

    // Idle: only lastSeen moves, however long.
    let mut engine = healthy("iad");
    for site in &mut engine.sites {
        site.last_seen = Some(Timestamp(T0 + 3_600_000));
    }
    let later = project(&engine, &stored, Some(1), Timestamp(T0 + 3_600_000));
    assert!(!worth_writing(&stored, &later, Timestamp(T0 + 3_600_000)));

    // Busy: the lag moves; written once the stored status is a minute old.
    let mut busy = healthy("iad");
    busy.sites[1].seconds_behind_source = Some(9);
    let lagging = project(&busy, &stored, Some(1), Timestamp(T0 + 1_000));
    assert!(!worth_writing(&stored, &lagging, Timestamp(T0 + 1_000)));
    assert!(worth_writing(&stored, &lagging, Timestamp(T0 + 60_000)));

    // Anything that means something is written at once; the failover state is not compared.
    assert!(worth_writing(
        &stored,
        &project(&healthy("iad"), &stored, Some(2), Timestamp(T0)),
        Timestamp(T0)
    ));
    let mut with_state = stored.clone();
    with_state.failover_state = Some(FailoverStateRecord::default());
    assert!(!worth_writing(&stored, &with_state, Timestamp(T0)));
}

#[test]
fn long_condition_messages_are_cut_on_a_character_boundary() {
    let text = "é".repeat(20_000);
    let cut = truncate(&text, MAX_CONDITION_MESSAGE);
    assert!(cut.len() <= MAX_CONDITION_MESSAGE);
    assert!(cut.chars().all(|c| c == 'é'));
}
