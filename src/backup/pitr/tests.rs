use proptest::prelude::*;

use super::*;

const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

fn set(text: &str) -> GtidSet {
    if text.is_empty() {
        return GtidSet::new();
    }
    GtidSet::parse(&format!("{UUID}:{text}")).expect("gtid set")
}

fn log(seq: u32, previous: &str, own: &str, first: u32, last: u32) -> ArchivedBinlog {
    ArchivedBinlog {
        name: format!("binlog.{seq:06}"),
        server_uuid: UUID.into(),
        gtids: set(own),
        previous_gtids: set(previous),
        first_event: first,
        last_event: last,
        bytes: 1,
        parts: Vec::new(),
        encryption: None,
    }
}

/// Logs 1..=4 hold 1-100, 101-200, 201-300, 301-400, an hour apart.
fn archive() -> Vec<ArchivedBinlog> {
    vec![
        log(4, "1-300", "301-400", 13_000, 13_500),
        log(1, "", "1-100", 1_000, 1_500),
        log(3, "1-200", "201-300", 9_000, 9_500),
        log(2, "1-100", "101-200", 5_000, 5_500),
    ]
}

fn names(plan: &ReplayPlan) -> Vec<&str> {
    plan.binlogs.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn a_gtid_target_replays_from_the_first_log_past_the_base_to_the_one_reaching_it() {
    let plan = plan_replay(
        &set("1-150"),
        &archive(),
        &RecoveryTarget::Gtids(set("1-250")),
        Timestamp::from_millis(5_200_000),
    )
    .expect("plan");
    assert_eq!(names(&plan), ["binlog.000002", "binlog.000003"]);
    assert_eq!(plan.include_gtids, Some(set("1-250")));
    assert_eq!(plan.stop_at, None);
}

#[test]
fn the_latest_target_replays_every_log_past_the_base_and_checks_the_chain() {
    let plan = plan_replay(
        &set("1-150"),
        &archive(),
        &RecoveryTarget::Latest,
        Timestamp::from_millis(5_200_000),
    )
    .expect("plan");
    assert_eq!(
        names(&plan),
        ["binlog.000002", "binlog.000003", "binlog.000004"]
    );
    assert_eq!((plan.include_gtids, plan.stop_at), (None, None));
    let mut gapped = archive();
    gapped.retain(|l| l.name != "binlog.000003");
    assert!(matches!(
        plan_replay(
            &set("1-150"),
            &gapped,
            &RecoveryTarget::Latest,
            Timestamp::from_millis(0)
        ),
        Err(PitrError::Gap { .. })
    ));
}

#[test]
fn a_stop_datetime_is_rfc3339_or_the_plain_utc_form() {
    let at = Timestamp::parse_rfc3339("2026-12-01T10:30:00Z").unwrap();
    assert_eq!(parse_stop_datetime("2026-12-01T10:30:00Z"), Some(at));
    assert_eq!(parse_stop_datetime("2026-12-01 10:30:00"), Some(at));
    assert_eq!(parse_stop_datetime("2026-12-01T12:30:00+02:00"), Some(at));
    // An explicit offset is honoured in either form; only the bare form is read as UTC.
    assert_eq!(parse_stop_datetime("2026-12-01 12:30:00+02:00"), Some(at));
    assert_eq!(parse_stop_datetime("2026-12-01 10:30:00 UTC"), None);
    assert_eq!(parse_stop_datetime("yesterday"), None);
    assert_eq!(parse_stop_datetime("2026-12-01 10:30"), None);
}

#[test]
fn a_time_target_replays_logs_begun_before_it() {
    let plan = plan_replay(
        &set("1-100"),
        &archive(),
        &RecoveryTarget::Time(Timestamp::from_millis(9_100_000)),
        Timestamp::from_millis(1_600_000),
    )
    .expect("plan");
    assert_eq!(names(&plan), ["binlog.000002", "binlog.000003"]);
    assert_eq!(plan.include_gtids, None);
    assert_eq!(plan.stop_at, Some(Timestamp::from_millis(9_100_000)));
}

#[test]
fn unreachable_gapped_and_earlier_targets_are_refused() {
    let base = set("1-100");
    let at = Timestamp::from_millis(1_600_000);
    assert!(matches!(
        plan_replay(&base, &archive(), &RecoveryTarget::Gtids(set("1-450")), at),
        Err(PitrError::Unreachable { missing }) if missing.ends_with(":401-450")
    ));
    let mut gapped = archive();
    gapped.retain(|l| l.name != "binlog.000003");
    assert!(matches!(
        plan_replay(&base, &gapped, &RecoveryTarget::Gtids(set("1-350")), at),
        Err(PitrError::Unreachable { .. })
    ));
    assert!(matches!(
        plan_replay(
            &base,
            &gapped,
            &RecoveryTarget::Time(Timestamp::from_millis(20_000_000)),
            at
        ),
        Err(PitrError::Gap { .. })
    ));
    assert!(matches!(
        plan_replay(
            &set("1-300"),
            &archive(),
            &RecoveryTarget::Gtids(set("1-250")),
            at
        ),
        Err(PitrError::BeforeBase { .. })
    ));
    assert!(matches!(
        plan_replay(
            &base,
            &archive(),
            &RecoveryTarget::Time(Timestamp::from_millis(1_000)),
            at
        ),
        Err(PitrError::BeforeBase { .. })
    ));
    assert_eq!(
        plan_replay(&base, &[], &RecoveryTarget::Gtids(set("1-200")), at),
        Err(PitrError::NoArchive)
    );
}

#[test]
fn a_target_equal_to_the_base_replays_nothing() {
    let plan = plan_replay(
        &set("1-200"),
        &archive(),
        &RecoveryTarget::Gtids(set("1-200")),
        Timestamp::from_millis(0),
    )
    .expect("plan");
    assert!(plan.binlogs.is_empty());
}

fn event(timestamp: u32, body: usize) -> Vec<u8> {
    let size = u32::try_from(19 + body).expect("size");
    let mut out = Vec::new();
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.push(2);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend(std::iter::repeat_n(0xab, body));
    out
}

#[test]
fn the_scan_reads_event_times_and_rejects_damage() {
    let mut file = vec![0xfe, b'b', b'i', b'n'];
    file.extend(event(0, 100));
    file.extend(event(1_700_000_000, 10));
    file.extend(event(1_700_000_100, 0));
    let scan = scan_events(file.as_slice()).expect("scan");
    assert_eq!(scan.events, 3);
    assert_eq!(
        (scan.first_event, scan.last_event),
        (1_700_000_000, 1_700_000_100)
    );
    assert!(matches!(
        scan_events(&file[..file.len() - 5]),
        Err(ScanError::Truncated { event: 2, .. })
    ));
    assert!(matches!(
        scan_events(&b"\xfdbin"[..]),
        Err(ScanError::Encrypted)
    ));
    assert!(matches!(
        scan_events(&b"GIF8"[..]),
        Err(ScanError::NotBinlog)
    ));
    let mut bad = vec![0xfe, b'b', b'i', b'n'];
    bad.extend(&event(1, 0)[..9]);
    bad.extend(&5u32.to_le_bytes());
    bad.extend(&[0u8; 6]);
    assert!(matches!(
        scan_events(bad.as_slice()),
        Err(ScanError::BadEvent { size: 5, .. })
    ));
}

proptest! {
    #[test]
    fn the_scan_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut file = vec![0xfe, b'b', b'i', b'n'];
        file.extend(bytes);
        let _ = scan_events(file.as_slice());
    }
}

fn pruned_names(archive: &[ArchivedBinlog], kept: &[GtidSet]) -> Vec<String> {
    let mut names: Vec<String> = prunable(archive, kept)
        .into_iter()
        .map(|l| l.name.clone())
        .collect();
    names.sort();
    names
}

#[test]
fn only_logs_every_kept_backup_holds_are_pruned_and_never_the_newest() {
    let archive = archive();
    assert!(
        pruned_names(&archive, &[]).is_empty(),
        "no backup, no pruning"
    );
    assert_eq!(
        pruned_names(&archive, &[set("1-250")]),
        ["binlog.000001", "binlog.000002"]
    );
    assert_eq!(
        pruned_names(&archive, &[set("1-250"), set("1-150")]),
        ["binlog.000001"],
        "the oldest kept backup decides"
    );
    assert_eq!(
        pruned_names(&archive, &[set("1-400")]),
        ["binlog.000001", "binlog.000002", "binlog.000003"],
        "the newest log stays: the archiver resumes after it"
    );
    // A backup of another server holds none of these: nothing goes.
    let other = GtidSet::parse("aaaaaaaa-71ca-11e1-9e33-c80aa9429562:1-1000").expect("gtid");
    assert!(pruned_names(&archive, &[set("1-400"), other]).is_empty());
    // Only a prefix: a covered log after an uncovered one stays (no hole).
    let mut holed = archive.clone();
    holed[2].gtids = set("1-10"); // log 3, covered by 1-100
    assert_eq!(pruned_names(&holed, &[set("1-50")]), Vec::<String>::new());
}

proptest! {
    /// Whatever the kept backups, pruning changes no restore from any of them: the replay
    /// to the newest archived transaction plans the same logs over the pruned archive.
    #[test]
    fn pruning_never_changes_a_restore_from_a_kept_backup(
        cuts in proptest::collection::vec(1u32..400, 1..4),
    ) {
        let archive = archive();
        let kept: Vec<GtidSet> = cuts.iter().map(|c| set(&format!("1-{c}"))).collect();
        let pruned = pruned_names(&archive, &kept);
        let rest: Vec<ArchivedBinlog> = archive
            .iter()
            .filter(|l| !pruned.contains(&l.name))
            .cloned()
            .collect();
        for base in &kept {
            let whole = plan_replay(base, &archive, &RecoveryTarget::Latest, Timestamp::from_millis(0));
            let after = plan_replay(base, &rest, &RecoveryTarget::Latest, Timestamp::from_millis(0));
            match (whole, after) {
                (Ok(a), Ok(b)) => prop_assert_eq!(names(&a), names(&b)),
                (a, b) => prop_assert!(a.is_err() == b.is_err(), "{:?} / {:?}", a, b),
            }
        }
        for log in archive.iter().filter(|l| pruned.contains(&l.name)) {
            prop_assert!(kept.iter().all(|k| k.contains(&log.gtids)));
        }
        prop_assert!(!pruned.contains(&"binlog.000004".to_owned()));
    }
}

#[test]
fn a_whole_second_finish_bounds_the_stop_at_the_end_of_its_second() {
    let bound = earliest_stop("2026-12-01T10:00:05Z").expect("a time");
    assert_eq!(
        bound,
        Timestamp::parse_rfc3339("2026-12-01T10:00:05.999Z").expect("time")
    );
    // A stop inside the second the backup finished could precede its snapshot.
    let inside = Timestamp::parse_rfc3339("2026-12-01T10:00:05Z").expect("time");
    assert!(inside < bound);
    let precise = earliest_stop("2026-12-01T10:00:05.250Z").expect("a time");
    assert_eq!(precise.as_millis() % 1000, 250);
    assert_eq!(earliest_stop("yesterday"), None);
}
