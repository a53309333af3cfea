//! What `kubectl bloodraven status` shows: a summary of each group's status (the shape of
//! `-o json|yaml`) and its table. Pure: groups and the current time in, text out.

use k8s_openapi::jiff;
use serde::Serialize;

use crate::api::MysqlFailoverGroup;
use crate::api::failover_group::SiteRole;

/// One group as the plugin reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub namespace: String,
    pub name: String,
    /// The writable primary, as the operator last recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The `Ready` condition's status (`True`, `False`, `Unknown`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    pub sites: Vec<SiteSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<LastFailover>,
    /// The last or current planned failover's phase and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<PlannedSummary>,
}

/// One site: its role from the spec, what the operator last observed from the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteSummary {
    pub name: String,
    /// `primary-candidate`, `dr-only`, `read-only`; `unknown` for a site only the status
    /// names (removed from the spec).
    pub role: String,
    pub primary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicating: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergent_gtid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergent_transactions: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastFailover {
    /// RFC 3339, as stored.
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The summary of one group: the spec's sites in order, then any site only the status
/// still names.
pub fn summarize(group: &MysqlFailoverGroup) -> GroupSummary {
    let status = group.status.clone().unwrap_or_default();
    let primary = status.active_site.clone();
    let observed = |name: &str| status.sites.iter().find(|s| s.name == name);
    let mut sites: Vec<SiteSummary> = group
        .spec
        .sites
        .iter()
        .map(|spec| {
            site_summary(
                &spec.name,
                Some(spec.role),
                observed(&spec.name),
                primary.as_deref(),
            )
        })
        .collect();
    for extra in &status.sites {
        if !group.spec.sites.iter().any(|s| s.name == extra.name) {
            sites.push(site_summary(
                &extra.name,
                None,
                Some(extra),
                primary.as_deref(),
            ));
        }
    }
    GroupSummary {
        namespace: group.metadata.namespace.clone().unwrap_or_default(),
        name: group.metadata.name.clone().unwrap_or_default(),
        ready: status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone()),
        sites,
        last_failover: status.last_failover.clone().map(|time| LastFailover {
            time,
            target: status.last_failover_target.clone(),
        }),
        planned_failover: status.planned_failover.as_ref().map(|p| PlannedSummary {
            phase: p.phase.clone(),
            target: p.target.clone(),
            message: p.message.clone(),
        }),
        primary,
    }
}

fn site_summary(
    name: &str,
    role: Option<SiteRole>,
    observed: Option<&crate::api::failover_group_status::SiteStatus>,
    primary: Option<&str>,
) -> SiteSummary {
    SiteSummary {
        name: name.to_owned(),
        role: role.map_or("unknown", role_name).to_owned(),
        primary: primary == Some(name),
        state: observed.and_then(|o| o.state.clone()),
        replicating: observed.and_then(|o| o.replicating),
        lag_seconds: observed.and_then(|o| o.seconds_behind_source),
        divergent_gtid: observed.and_then(|o| o.divergent_gtid.clone()),
        divergent_transactions: observed.and_then(|o| o.divergent_transaction_count),
        recovery_state: observed
            .and_then(|o| o.recovery_state.clone())
            .filter(|s| !s.is_empty()),
    }
}

fn role_name(role: SiteRole) -> &'static str {
    match role {
        SiteRole::PrimaryCandidate => "primary-candidate",
        SiteRole::DrOnly => "dr-only",
        SiteRole::ReadOnly => "read-only",
    }
}

/// The table: one row per site. The group's columns (ready, last failover) are filled on
/// its first row only; `with_namespace` adds a NAMESPACE column (`-A`).
pub fn render_table(groups: &[GroupSummary], with_namespace: bool, now: jiff::Timestamp) -> String {
    if groups.is_empty() {
        return "No MysqlFailoverGroups found.\n".to_owned();
    }
    let mut header = vec![
        "GROUP",
        "SITE",
        "ROLE",
        "PRIMARY",
        "STATE",
        "REPLICATING",
        "LAG",
        "DIVERGENT",
        "READY",
        "LAST FAILOVER",
    ];
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for group in groups {
        let group_cells = [
            group.ready.clone().unwrap_or_else(|| "-".to_owned()),
            last_failover_cell(group, now),
        ];
        if group.sites.is_empty() {
            let mut row = vec![group.name.clone(), "-".to_owned(), "-".to_owned()];
            row.extend(["-", "-", "-", "-", "-"].map(str::to_owned));
            row.extend(group_cells.iter().cloned());
            push(&mut rows, with_namespace, &group.namespace, row);
            continue;
        }
        for (i, site) in group.sites.iter().enumerate() {
            let mut row = vec![
                group.name.clone(),
                site.name.clone(),
                site.role.clone(),
                if site.primary { "*" } else { "" }.to_owned(),
                state_cell(site),
                site.replicating
                    .map_or("-", |r| if r { "yes" } else { "no" })
                    .to_owned(),
                site.lag_seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s}s")),
                divergent_cell(site),
            ];
            if i == 0 {
                row.extend(group_cells.iter().cloned());
            } else {
                row.extend([String::new(), String::new()]);
            }
            push(&mut rows, with_namespace, &group.namespace, row);
        }
    }
    align(&rows)
}

fn push(rows: &mut Vec<Vec<String>>, with_namespace: bool, namespace: &str, mut row: Vec<String>) {
    if with_namespace {
        row.insert(0, namespace.to_owned());
    }
    rows.push(row);
}

fn state_cell(site: &SiteSummary) -> String {
    let state = site.state.clone().unwrap_or_else(|| "-".to_owned());
    match &site.recovery_state {
        Some(recovery) => format!("{state} ({recovery})"),
        None => state,
    }
}

/// The longest divergent GTID set shown in full in the table; `-o json` has it whole.
const GTID_CELL: usize = 24;

fn divergent_cell(site: &SiteSummary) -> String {
    let gtid = site.divergent_gtid.as_deref().filter(|g| !g.is_empty());
    match (site.divergent_transactions, gtid) {
        (None | Some(0), None) => "-".to_owned(),
        (Some(n), None) => format!("{n} trx"),
        (count, Some(gtid)) => {
            let shown = shorten(gtid);
            match count {
                Some(n) => format!("{n} trx {shown}"),
                None => shown,
            }
        }
    }
}

/// A GTID set cut to [`GTID_CELL`] characters for a table cell.
pub(super) fn shorten(gtid: &str) -> String {
    if gtid.chars().count() > GTID_CELL {
        let head: String = gtid.chars().take(GTID_CELL).collect();
        format!("{head}...")
    } else {
        gtid.to_owned()
    }
}

fn last_failover_cell(group: &GroupSummary, now: jiff::Timestamp) -> String {
    let Some(last) = &group.last_failover else {
        return "never".to_owned();
    };
    let when = last
        .time
        .parse::<jiff::Timestamp>()
        .map_or_else(|_| last.time.clone(), |t| format!("{} ago", age(now, t)));
    match &last.target {
        Some(target) => format!("{when} (to {target})"),
        None => when,
    }
}

/// kubectl's AGE style: the largest unit, or two for short spans (`90s` is `1m30s`).
pub fn age(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let seconds = (now.as_second() - then.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Left-aligned columns separated by three spaces, kubectl's layout; no trailing blanks.
pub(super) fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(yaml: &str) -> MysqlFailoverGroup {
        serde_saphyr::from_str(yaml).expect("a group")
    }

    const TWO_SITES: &str = r"
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: orders, namespace: shop}
spec:
  sites:
    - {name: iad, role: primary-candidate, lbIP: 10.0.0.1, taintNodeSelector: {zone: a}}
    - {name: pdx, role: primary-candidate, lbIP: 10.0.0.2, taintNodeSelector: {zone: b}}
    - {name: reader, role: read-only}
  dns: {hostname: orders.example.com}
status:
  activeSite: iad
  lastFailover: '2026-12-02T10:00:00Z'
  lastFailoverTarget: iad
  conditions:
    - {type: Ready, status: 'True', reason: AllSitesHealthy, message: ok, lastTransitionTime: '2026-12-02T10:00:00Z'}
  sites:
    - {name: iad, state: writable}
    - {name: pdx, state: read-only, replicating: true, secondsBehindSource: 3, divergentGtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:23-25', divergentTransactionCount: 3, recoveryState: RecoveryBlocked}
    - {name: gone, state: unreachable}
";

    fn now() -> jiff::Timestamp {
        "2026-12-02T10:05:30Z".parse().expect("a time")
    }

    #[test]
    fn summary_joins_the_spec_roles_with_the_observed_status() {
        let s = summarize(&group(TWO_SITES));
        assert_eq!(s.primary.as_deref(), Some("iad"));
        assert_eq!(s.ready.as_deref(), Some("True"));
        let names: Vec<_> = s
            .sites
            .iter()
            .map(|x| (x.name.as_str(), x.role.as_str(), x.primary))
            .collect();
        assert_eq!(
            names,
            [
                ("iad", "primary-candidate", true),
                ("pdx", "primary-candidate", false),
                ("reader", "read-only", false),
                ("gone", "unknown", false),
            ]
        );
        assert_eq!(s.sites[1].divergent_transactions, Some(3));
        assert_eq!(
            s.last_failover,
            Some(LastFailover {
                time: "2026-12-02T10:00:00Z".to_owned(),
                target: Some("iad".to_owned())
            })
        );
    }

    #[test]
    fn table_has_a_row_per_site_and_the_group_columns_once() {
        let table = render_table(&[summarize(&group(TWO_SITES))], false, now());
        let expected = "\
GROUP    SITE     ROLE                PRIMARY   STATE                         REPLICATING   LAG   DIVERGENT                           READY   LAST FAILOVER
orders   iad      primary-candidate   *         writable                      -             -     -                                   True    5m30s ago (to iad)
orders   pdx      primary-candidate             read-only (RecoveryBlocked)   yes           3s    3 trx 3e11fa47-71ca-11e1-9e33-...
orders   reader   read-only                     -                             -             -     -
orders   gone     unknown                       unreachable                   -             -     -
";
        assert_eq!(table, expected);
    }

    #[test]
    fn table_with_namespaces_and_a_group_the_operator_has_not_seen_yet() {
        let mut fresh = group(TWO_SITES);
        fresh.status = None;
        fresh.spec.sites.truncate(1);
        fresh.metadata.name = Some("billing".to_owned());
        fresh.metadata.namespace = Some("acct".to_owned());
        let table = render_table(&[summarize(&fresh)], true, now());
        let expected = "\
NAMESPACE   GROUP     SITE   ROLE                PRIMARY   STATE   REPLICATING   LAG   DIVERGENT   READY   LAST FAILOVER
acct        billing   iad    primary-candidate             -       -             -     -           -       never
";
        assert_eq!(table, expected);
    }

    #[test]
    fn no_groups_says_so() {
        assert_eq!(
            render_table(&[], false, now()),
            "No MysqlFailoverGroups found.\n"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().expect("a time");
        let base = t("2026-01-01T00:00:00Z");
        let cases = [
            ("2026-01-01T00:00:05Z", "5s"),
            ("2026-01-01T00:01:30Z", "90s"),
            ("2026-01-01T00:05:30Z", "5m30s"),
            ("2026-01-01T01:00:00Z", "60m"),
            ("2026-01-01T04:30:00Z", "4h30m"),
            ("2026-01-01T20:00:00Z", "20h"),
            ("2026-01-05T00:00:00Z", "4d"),
            // A clock behind the record is not a negative age.
            ("2025-12-31T23:00:00Z", "0s"),
        ];
        for (now, want) in cases {
            assert_eq!(age(t(now), base), want, "{now}");
        }
    }

    #[test]
    fn json_names_every_observed_field() {
        let json = serde_json::to_value(summarize(&group(TWO_SITES))).expect("json");
        assert_eq!(json["sites"][1]["lagSeconds"], 3);
        assert_eq!(
            json["sites"][1]["divergentGtid"],
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23-25"
        );
        assert_eq!(json["lastFailover"]["target"], "iad");
        assert_eq!(json["primary"], "iad");
    }
}
