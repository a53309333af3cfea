//! The restore controller while this replica leads: `spec.initFromBackup` and
//! `spec.restoreInPlace` of each group, through a Job, with the status under
//! `status.restore` / `status.restoreInPlace`.
//!
//! The decisions are [`crate::backup::restore_run`] (pure); this module observes (the
//! group's status and failover status, the Job in the watch cache, the referenced
//! `MysqlBackup`) and acts: spend the token, fence the primary's pods, apply the Job, hand
//! the peers to reclones, write the status, post Events, count the run. The manager keeps
//! the group's failover loop stopped while [`frozen`] says so. A one-schema in-place run
//! (`restoreInPlace.loadOptions.includeSchemas: [name]`) fences nothing, never stops the
//! loop and reclones nobody: its load is binary-logged and replicates to the peers.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};

use super::OperatorContext;
use super::backups::{MANIFEST_TIMEOUT, open_repository};
use super::group::GroupRuntime;
use super::job_record::{self, JobRef};
use super::job_runs::{Events, job_state};
use crate::api::failover_group_status::RestoreStatus;
use crate::api::restore::RestoreInputs;
use crate::api::{MysqlBackup, MysqlFailoverGroup};
use crate::backup::restore_run::{
    self, Observed, RestoreFailure, RestoreKind, RestorePhase, RestoreRecord, RestoreScope, Step,
    restore_record_key,
};
use crate::backup::run::JobState;
use crate::backup::sanity::MAX_RECORD_BYTES;
use crate::control::Reply;
use crate::failover::{Request, Timestamp};
use crate::ports::objects::{ObjectKey, ObjectStore as _};
use crate::render::names::{self, LABEL_ROLE};
use crate::render::restore::{self as render, RestoreJobInput, RestoreSource};
use crate::telemetry::backup::RunKind;

/// The role label a fenced primary's pods carry: it matches no Service.
const FENCED: &str = "fenced";

/// One kind of restore as the group asks for it and as its status records it.
struct Wanted<'a> {
    kind: RestoreKind,
    inputs: &'a RestoreInputs,
    /// The in-place `confirm` token (`init` for `initFromBackup`).
    token: &'a str,
    status: RestoreStatus,
    /// `status.restoreInPlace.confirmTokenUsed`.
    token_used: Option<String>,
    /// `status.restoreInPlace.scope`: what the recorded run replaces.
    recorded_scope: RestoreScope,
}

impl Wanted<'_> {
    /// The status field this kind writes.
    fn field(&self) -> &'static str {
        match self.kind {
            RestoreKind::InitFromBackup => "restore",
            RestoreKind::InPlace => "restoreInPlace",
        }
    }

    fn phase(&self) -> Option<RestorePhase> {
        RestorePhase::parse(self.status.phase.as_deref())
    }

    /// The scope of the run in progress as recorded when it began (an edit of the spec
    /// meanwhile changes nothing about a run under way); otherwise the scope the spec
    /// asks for. Inputs that cannot run read as full: the run they would begin fails to
    /// build before anything is touched.
    fn scope(&self) -> RestoreScope {
        if restore_run::in_progress(self.phase()) {
            self.recorded_scope.clone()
        } else {
            render::scope(self.kind, self.inputs).unwrap_or(RestoreScope::Full)
        }
    }
}

fn wanted(group: &MysqlFailoverGroup) -> Vec<Wanted<'_>> {
    let status = group.status.clone().unwrap_or_default();
    let mut out = Vec::new();
    if let Some(init) = &group.spec.init_from_backup {
        out.push(Wanted {
            kind: RestoreKind::InitFromBackup,
            inputs: &init.inputs,
            token: "init",
            status: status.restore.clone().unwrap_or_default(),
            token_used: None,
            recorded_scope: RestoreScope::Full,
        });
    }
    if let Some(in_place) = &group.spec.restore_in_place {
        let stored = status.restore_in_place.clone().unwrap_or_default();
        out.push(Wanted {
            kind: RestoreKind::InPlace,
            inputs: &in_place.inputs,
            token: &in_place.confirm,
            status: stored.run,
            token_used: stored.confirm_token_used,
            recorded_scope: RestoreScope::parse(stored.scope.as_deref()),
        });
    }
    out
}

/// The current run's Job, from the watch cache.
fn job_of(ctx: &OperatorContext, group: &MysqlFailoverGroup, status: &RestoreStatus) -> JobState {
    let Some(name) = status.job_name.clone() else {
        return JobState::Absent;
    };
    let key = ObjectKey::job(group.namespace().unwrap_or_default(), name);
    job_state(ctx.objects.live(&key).as_ref())
}

/// Whether the group's failover loop must stay stopped: a full restore has spent its
/// token or started its Job, and the Job may still write. A one-schema run never stops it.
pub(super) fn frozen(ctx: &OperatorContext, group: &MysqlFailoverGroup) -> bool {
    wanted(group)
        .iter()
        .any(|w| restore_run::frozen(w.phase(), &w.scope(), &job_of(ctx, group, &w.status)))
}

/// One restore pass's context: the group, the kind of restore it asks for, and how to look
/// up the `MysqlBackup` its source names.
#[derive(Clone, Copy)]
struct Run<'a> {
    ctx: &'a OperatorContext,
    group: &'a MysqlFailoverGroup,
    backup: &'a dyn Fn(&str) -> Option<Arc<MysqlBackup>>,
    wanted: &'a Wanted<'a>,
}

/// Posts the restore Events and remembers the reclones the loop
/// accepted until the status records them.
pub(super) struct Restores {
    events: Events,
    /// Peers accepted per (namespace, group, run token): a status write that fails after
    /// an accepted reclone must not hand the same peer to a second clone.
    accepted: std::collections::BTreeMap<(String, String, String), Vec<String>>,
}

impl Default for Restores {
    fn default() -> Self {
        Self {
            events: Events::new("Restore"),
            accepted: std::collections::BTreeMap::new(),
        }
    }
}

impl Restores {
    /// Moves each restore of `group` on by one step. `runtime` is its failover loop when
    /// running; `backup` looks a `MysqlBackup` up by name in the group's namespace.
    pub(super) async fn reconcile_group(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        runtime: Option<&GroupRuntime>,
        backup: &dyn Fn(&str) -> Option<Arc<MysqlBackup>>,
    ) {
        let mut newest: Option<LastSuccess> = None;
        for wanted in wanted(group) {
            let span = tracing::info_span!("restore", kind = wanted.kind.as_str());
            let pass = self.reconcile_one(ctx, group, runtime, backup, &wanted);
            tracing::Instrument::instrument(pass, span).await;
            if let Some(last) = last_success(group, backup, &wanted)
                && newest.as_ref().is_none_or(|n| last.finished > n.finished)
            {
                newest = Some(last);
            }
        }
        // From the stored status, so a new leader reports what the old one did (only the
        // runs a leader sees finish are counted).
        if let Some(last) = newest {
            ctx.metrics
                .group_backups(&group.namespace().unwrap_or_default(), &group.name_any())
                .record_last_success(
                    RunKind::Restore,
                    &last.profile,
                    last.finished,
                    last.finished.since(last.started),
                    last.bytes,
                );
        }
    }

    async fn reconcile_one(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        runtime: Option<&GroupRuntime>,
        backup: &dyn Fn(&str) -> Option<Arc<MysqlBackup>>,
        wanted: &Wanted<'_>,
    ) {
        let failover = runtime.and_then(GroupRuntime::failover_status);
        let sites: Vec<String> = group.spec.sites.iter().map(|s| s.name.clone()).collect();
        let armed = match wanted.kind {
            RestoreKind::InitFromBackup => true,
            RestoreKind::InPlace => {
                restore_run::token_is_newer(wanted.token, wanted.token_used.as_deref())
            }
        };
        let scope = wanted.scope();
        let observed = Observed {
            kind: wanted.kind,
            phase: wanted.phase(),
            armed,
            target: wanted.status.target_site.as_deref(),
            scope: &scope,
            group: failover.as_ref(),
            job: job_of(ctx, group, &wanted.status),
            recloned: &wanted.status.recloned_sites,
            sites: &sites,
        };
        let step = restore_run::next_step(&observed, runtime.is_some());
        let in_progress = restore_run::in_progress(observed.phase);
        let run = Run {
            ctx,
            group,
            backup,
            wanted,
        };
        match step {
            Step::Nothing => {}
            Step::Wait(message) => self.say(run, &message, in_progress).await,
            Step::TargetUnavailable(message) => {
                if wanted.status.message.as_deref() != Some(message.as_str()) {
                    self.event(
                        ctx,
                        group,
                        "RestoreTargetUnavailable",
                        true,
                        message.clone(),
                    )
                    .await;
                }
                self.say(run, &message, in_progress).await;
            }
            Step::Begin { target, then } => self.begin(run, &target, then, &scope).await,
            Step::FenceAndLoad => self.fence_and_load(run).await,
            Step::Resume => {
                let message = if scope.is_full() {
                    "loaded; resuming the failover loop, then recloning the other sites"
                } else {
                    "loaded; the other sites follow by replication"
                };
                let mut fields = json!({"phase": RestorePhase::Resuming.as_str(wanted.kind),
                    "message": message});
                if let Some(replayed) = replay_record(run).await {
                    fields["pitrReplayedBinlogCount"] =
                        json!(i32::try_from(replayed.len()).unwrap_or(i32::MAX));
                    fields["pitrReplayedBinlogFile"] = json!(replayed.last());
                }
                write_run(ctx, group, wanted, &fields).await;
            }
            Step::Reclone(sites) => {
                if let Some(runtime) = runtime {
                    self.reclone(run, runtime, &sites).await;
                }
            }
            Step::Finish => self.finish(run, &scope).await,
            Step::Fail { reason, message } => {
                self.fail(run, reason, &message, None).await;
            }
        }
    }

    /// Records why nothing moves, once per message.
    async fn say(&mut self, run: Run<'_>, message: &str, in_progress: bool) {
        let Run {
            ctx, group, wanted, ..
        } = run;
        if wanted.status.message.as_deref() == Some(message) {
            return;
        }
        let mut fields = json!({"message": message});
        // A run not begun shows Pending; one in progress keeps its phase.
        if !in_progress && wanted.kind == RestoreKind::InitFromBackup {
            fields["phase"] = json!("Pending");
        }
        write_run(ctx, group, wanted, &fields).await;
    }

    /// Resolves the source and renders the Job (a build failure ends the run), or `None`
    /// when it cannot be made yet (no image).
    async fn job_for(&mut self, run: Run<'_>, target: &str) -> Option<(RestoreSource, Value)> {
        let Run {
            ctx,
            group,
            backup,
            wanted,
        } = run;
        let Some(image) = ctx.jobs.image.as_deref() else {
            let message = "waiting: the operator was started without --job-image (BLOODRAVEN_OPERATOR_IMAGE), the image restore Jobs run";
            self.say(run, message, true).await;
            return None;
        };
        let referenced = wanted
            .inputs
            .source
            .mysql_backup_ref
            .as_ref()
            .and_then(|r| backup(&r.name));
        let built = render::resolve_source(group, wanted.inputs, referenced.as_deref()).and_then(
            |source| {
                let address = ctx.endpoints.address(
                    &group.namespace().unwrap_or_default(),
                    &group.name_any(),
                    target,
                );
                let job = render::restore_job(&RestoreJobInput {
                    group,
                    kind: wanted.kind,
                    inputs: wanted.inputs,
                    source: &source,
                    target_site: target,
                    target_address: &address,
                    run: wanted.token,
                    image,
                })?;
                Ok((source, job))
            },
        );
        match built.map(|(source, job)| (source, serde_json::to_value(job))) {
            Ok((source, Ok(job))) => Some((source, job)),
            Ok((_, Err(e))) => {
                tracing::warn!(error = %e, "cannot encode the restore Job");
                None
            }
            Err(e) => {
                let spend = (wanted.kind == RestoreKind::InPlace).then_some(wanted.token);
                let message = e.to_string();
                self.fail(run, RestoreFailure::BuildFailed, &message, spend)
                    .await;
                None
            }
        }
    }

    async fn begin(
        &mut self,
        run: Run<'_>,
        target: &str,
        then: RestorePhase,
        scope: &RestoreScope,
    ) {
        let Run {
            ctx,
            group,
            backup,
            wanted,
        } = run;
        let Some((source, job)) = self.job_for(run, target).await else {
            return;
        };
        let job_name = render::job_name(&group.name_any(), wanted.kind, wanted.token);
        let referenced = source_backup(wanted.inputs, backup);
        let mut fields = json!({
            "phase": then.as_str(wanted.kind),
            "targetSite": target,
            "jobName": job_name,
            "startTime": crate::shells::backup::now().rfc3339(),
            "completionTime": null,
            "sourceGtidExecuted": referenced.as_ref().and_then(|b| b.status.as_ref()?.gtid_executed.clone()),
            "sourceSizeBytes": referenced.as_ref().and_then(|b| b.status.as_ref()?.size_bytes),
            "reclonedSites": [],
            // What this run replays to (a run without pointInTime clears the last run's).
            "pitrStopDatetime": render::stop_datetime(wanted.inputs),
            "pitrReplayedBinlogCount": null,
            "pitrReplayedBinlogFile": null,
        });
        let id = &source.id;
        let message = match (wanted.kind, scope) {
            (RestoreKind::InitFromBackup, _) => {
                // No fence for a new group: it serves nobody yet. The Job goes first so the
                // recorded Running always has a Job behind it.
                if let Err(e) = ctx.objects.apply(&job).await {
                    tracing::warn!(error = %e, "cannot create the restore Job; retrying");
                    return;
                }
                format!("restoring backup {id} into {target} (Job {job_name})")
            }
            (RestoreKind::InPlace, RestoreScope::Full) => format!(
                "restoring backup {id} in place into {target}: fencing the primary, then Job {job_name}"
            ),
            (RestoreKind::InPlace, RestoreScope::Schema(name)) => format!(
                "restoring schema {name} of backup {id} in place into {target} (Job {job_name}); the group keeps serving and the other sites follow by replication"
            ),
        };
        if wanted.kind == RestoreKind::InPlace {
            fields["confirmTokenUsed"] = json!(wanted.token);
            fields["scope"] = json!(scope.to_string());
        }
        fields["message"] = json!(message);
        if !write_run(ctx, group, wanted, &fields).await {
            return;
        }
        tracing::info!(target, job = %job_name, %id, %scope, "restore started");
        self.event(ctx, group, "RestoreStarted", false, message)
            .await;
        if wanted.kind == RestoreKind::InPlace && then == RestorePhase::Loading {
            // A one-schema run loads at once, and its Job comes after the spent token (as a
            // full run's comes after the fence): a token is spent before anything can touch
            // the data, and a run whose Job could not be created ends as lost on the next
            // pass, with nothing touched.
            if let Err(e) = ctx.objects.apply(&job).await {
                tracing::warn!(error = %e, "cannot create the restore Job: the run ends as lost");
            }
        }
    }

    async fn fence_and_load(&mut self, run: Run<'_>) {
        let Run {
            ctx, group, wanted, ..
        } = run;
        let Some(target) = wanted.status.target_site.clone() else {
            let message = "the run records no target site";
            self.fail(run, RestoreFailure::BuildFailed, message, None)
                .await;
            return;
        };
        let Some((_, job)) = self.job_for(run, &target).await else {
            return;
        };
        if let Err(e) = fence_pods(ctx, group, &target).await {
            tracing::warn!(error = %e, "cannot fence the primary's pods; retrying");
            self.say(run, &format!("fencing {target}'s pods: {e}"), true)
                .await;
            return;
        }
        if let Err(e) = ctx.objects.apply(&job).await {
            tracing::warn!(error = %e, "cannot create the restore Job; retrying");
            return;
        }
        let fields = json!({"phase": RestorePhase::Loading.as_str(wanted.kind),
            "message": format!("{target} fenced; the restore Job is loading")});
        write_run(ctx, group, wanted, &fields).await;
    }

    async fn reclone(&mut self, run: Run<'_>, runtime: &GroupRuntime, sites: &[String]) {
        let Run {
            ctx, group, wanted, ..
        } = run;
        let key = (
            group.namespace().unwrap_or_default(),
            group.name_any(),
            wanted.token.to_owned(),
        );
        // Only this run's memory counts: a new token starts afresh.
        self.accepted
            .retain(|k, _| k.0 != key.0 || k.1 != key.1 || k.2 == key.2);
        let remembered = self.accepted.entry(key).or_default();
        let mut recloned = wanted.status.recloned_sites.clone();
        for site in remembered.iter() {
            if !recloned.contains(site) {
                recloned.push(site.clone());
            }
        }
        let mut refusals = Vec::new();
        let pending: Vec<&String> = sites.iter().filter(|s| !recloned.contains(s)).collect();
        for site in pending {
            match runtime
                .request(Request::Reclone { site: site.clone() })
                .await
            {
                Ok(Reply::Accepted { message }) => {
                    tracing::info!(site = %site, message = %message, "peer handed to a reclone");
                    remembered.push(site.clone());
                    recloned.push(site.clone());
                }
                Ok(Reply::Rejected { reason }) => refusals.push(format!("{site}: {reason}")),
                Err(e) => refusals.push(format!("{site}: {e}")),
            }
        }
        let mut fields = json!({"reclonedSites": recloned});
        if !refusals.is_empty() {
            fields["message"] = json!(format!(
                "loaded; reclones not taken up yet (retried): {}",
                refusals.join("; ")
            ));
        }
        if recloned.len() > wanted.status.recloned_sites.len() || !refusals.is_empty() {
            write_run(ctx, group, wanted, &fields).await;
        }
    }

    async fn finish(&mut self, run: Run<'_>, scope: &RestoreScope) {
        let Run {
            ctx,
            group,
            backup,
            wanted,
        } = run;
        let now = crate::shells::backup::now();
        let started = wanted
            .status
            .start_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or(now);
        let target = wanted.status.target_site.clone().unwrap_or_default();
        let peers = wanted.status.recloned_sites.join(", ");
        let message = match scope {
            RestoreScope::Schema(name) => {
                format!(
                    "restored schema {name} into {target}; the other sites follow by replication"
                )
            }
            RestoreScope::Full if peers.is_empty() => format!("restored into {target}"),
            RestoreScope::Full => format!("restored into {target}; recloning {peers} from it"),
        };
        let fields =
            json!({"phase": "Succeeded", "completionTime": now.rfc3339(), "message": message});
        if write_run(ctx, group, wanted, &fields).await {
            tracing::info!(target = %target, "restore succeeded");
            let bytes = wanted
                .status
                .source_size_bytes
                .and_then(|b| u64::try_from(b).ok())
                .unwrap_or(0);
            let metrics = ctx
                .metrics
                .group_backups(&group.namespace().unwrap_or_default(), &group.name_any());
            let label = profile_label(group, source_backup(wanted.inputs, backup).as_deref());
            metrics.succeeded(RunKind::Restore, &label, now, now.since(started), bytes);
            self.event(ctx, group, "RestoreSucceeded", false, message)
                .await;
        }
    }

    /// Ends the run as Failed; `spend` records the in-place token when the run fails
    /// before it began, so a bad spec is not retried on every pass.
    async fn fail(
        &mut self,
        run: Run<'_>,
        reason: RestoreFailure,
        message: &str,
        spend: Option<&str>,
    ) {
        let Run {
            ctx,
            group,
            backup,
            wanted,
        } = run;
        if wanted.status.phase.as_deref() == Some("Failed")
            && wanted.status.message.as_deref() == Some(message)
            && spend.is_none_or(|t| wanted.token_used.as_deref() == Some(t))
        {
            return;
        }
        let mut fields = json!({
            "phase": "Failed",
            "completionTime": crate::shells::backup::now().rfc3339(),
            "message": message,
        });
        if let Some(token) = spend {
            fields["confirmTokenUsed"] = json!(token);
        }
        if write_run(ctx, group, wanted, &fields).await {
            tracing::warn!(reason = reason.as_str(), message, "restore failed");
            ctx.metrics
                .group_backups(&group.namespace().unwrap_or_default(), &group.name_any())
                .count(
                    RunKind::Restore,
                    &profile_label(group, source_backup(wanted.inputs, backup).as_deref()),
                    reason.as_str(),
                );
            let event = match reason {
                RestoreFailure::BuildFailed => "RestoreBuildFailed",
                RestoreFailure::JobFailed | RestoreFailure::JobLost => "RestoreFailed",
            };
            self.event(ctx, group, event, true, message.to_owned())
                .await;
        }
    }

    async fn event(
        &mut self,
        ctx: &OperatorContext,
        group: &MysqlFailoverGroup,
        reason: &str,
        warning: bool,
        message: String,
    ) {
        self.events.post(ctx, group, reason, warning, message).await;
    }
}

/// The binary logs a point-in-time restore's Job replayed, from the record it wrote to the
/// backup's repository. Best effort and bounded: the loop resumes whether or not the record
/// can be read (an unreadable one is logged, and the status fields stay unset).
async fn replay_record(run: Run<'_>) -> Option<Vec<String>> {
    let Run {
        ctx,
        group,
        backup,
        wanted,
    } = run;
    wanted.inputs.point_in_time.as_ref()?;
    let referenced = source_backup(wanted.inputs, backup);
    let source = render::resolve_source(group, wanted.inputs, referenced.as_deref()).ok()?;
    let namespace = group.namespace().unwrap_or_default();
    let job = wanted.status.job_name.as_deref()?;
    let name = render::record_name(&namespace, job);
    let key = restore_record_key(&name);
    let store = match open_repository(ctx, &namespace, &source.repository).await {
        Ok(Ok(store)) => store,
        Ok(Err(url)) => {
            // A backup volume the operator does not mount: the Job left the record in its
            // pod's termination message.
            let job = JobRef {
                namespace: &namespace,
                name: job,
                container: render::RESTORE_CONTAINER,
            };
            return match job_record::read::<RestoreRecord>(ctx, &job).await {
                Ok(Some(record)) if record.name == name => Some(record.replayed_binlogs),
                Ok(_) => {
                    tracing::info!(%url, "the restore record is on a backup volume and its Job left none");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the restore Job's termination message");
                    None
                }
            };
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the repository for the restore record");
            return None;
        }
    };
    let read = tokio::time::timeout(MANIFEST_TIMEOUT, store.get(&key, MAX_RECORD_BYTES)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, key, "cannot read the restore record");
            return None;
        }
        Err(_) => {
            tracing::warn!(
                key,
                "no answer for the restore record within {MANIFEST_TIMEOUT:?}"
            );
            return None;
        }
    };
    match serde_json::from_slice::<RestoreRecord>(&bytes) {
        Ok(record) => Some(record.replayed_binlogs),
        Err(e) => {
            tracing::warn!(error = %e, key, "the restore record does not parse");
            None
        }
    }
}

/// A Succeeded run as the last-success gauges report it.
struct LastSuccess {
    profile: String,
    started: Timestamp,
    finished: Timestamp,
    bytes: u64,
}

fn last_success(
    group: &MysqlFailoverGroup,
    backup: &dyn Fn(&str) -> Option<Arc<MysqlBackup>>,
    wanted: &Wanted<'_>,
) -> Option<LastSuccess> {
    let status = &wanted.status;
    if status.phase.as_deref() != Some("Succeeded") {
        return None;
    }
    let finished = status
        .completion_time
        .as_deref()
        .and_then(Timestamp::parse_rfc3339)?;
    Some(LastSuccess {
        profile: profile_label(group, source_backup(wanted.inputs, backup).as_deref()),
        started: status
            .start_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or(finished),
        finished,
        bytes: status
            .source_size_bytes
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0),
    })
}

/// Sets `fields` in this kind's status object. The precondition is the run's own phase
/// (a JSON Patch `test`), not the group's resourceVersion: the failover loop rewrites the
/// status on every decision, so a whole-object precondition would rarely hold, while a
/// second writer acting on the same phase (a deposed leader) is refused all the same.
async fn write_run(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    wanted: &Wanted<'_>,
    fields: &Value,
) -> bool {
    let current = serde_json::to_value(&group.status).unwrap_or(Value::Null);
    let ops = status_patch(&current, wanted.field(), fields);
    let patch: json_patch::Patch = match serde_json::from_value(ops) {
        Ok(patch) => patch,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the status patch");
            return false;
        }
    };
    let api: Api<MysqlFailoverGroup> =
        Api::namespaced(ctx.client.clone(), &group.namespace().unwrap_or_default());
    match api
        .patch_status(
            &group.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
            tracing::debug!(message = %status.message, "the restore status moved since it was read; the next pass decides again");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the restore status");
            false
        }
    }
}

/// The JSON Patch that sets `fields` (a `null` removes) in `status.<field>`, tested
/// against the phase `current` shows.
fn status_patch(current: &Value, field: &str, fields: &Value) -> Value {
    let set: serde_json::Map<String, Value> = fields
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if !current.is_object() {
        return json!([{"op": "add", "path": "/status", "value": {field: set}}]);
    }
    let Some(run) = current.get(field).filter(|r| r.is_object()) else {
        return json!([{"op": "add", "path": format!("/status/{field}"), "value": set}]);
    };
    let mut ops = Vec::new();
    if let Some(phase) = run.get("phase") {
        ops.push(json!({"op": "test", "path": format!("/status/{field}/phase"), "value": phase}));
    }
    for (key, value) in fields.as_object().into_iter().flatten() {
        let path = format!("/status/{field}/{key}");
        if !value.is_null() {
            ops.push(json!({"op": "add", "path": path, "value": value}));
        } else if run.get(key).is_some() {
            ops.push(json!({"op": "remove", "path": path}));
        }
    }
    Value::Array(ops)
}

fn source_backup(
    inputs: &RestoreInputs,
    backup: &dyn Fn(&str) -> Option<Arc<MysqlBackup>>,
) -> Option<Arc<MysqlBackup>> {
    inputs
        .source
        .mysql_backup_ref
        .as_ref()
        .and_then(|r| backup(&r.name))
}

/// The metric's `profile` label: the referenced backup's profile when this group has it
/// (labels come from the group's spec only, never from what an object names), else
/// `external`.
fn profile_label(group: &MysqlFailoverGroup, referenced: Option<&MysqlBackup>) -> String {
    referenced
        .and_then(|b| {
            let spec = group.spec.backup.as_ref()?;
            crate::render::backup::profile(spec, &b.spec.profile_name)
        })
        .map_or_else(|| render::EXTERNAL_PROFILE.to_owned(), |p| p.name.clone())
}

/// Takes the primary's pods out of every Service: their role label becomes `fenced`. A
/// server that serves no Pods (the test API server) has none to fence.
async fn fence_pods(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    site: &str,
) -> Result<usize, kube::Error> {
    let namespace = group.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector = names::site_selector(&group.name_any(), site)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(pods) => pods,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(0),
        Err(e) => return Err(e),
    };
    let patch = json!({"metadata": {"labels": {LABEL_ROLE: FENCED}}});
    let mut fenced = 0;
    for pod in pods {
        if pod.labels().get(LABEL_ROLE).map(String::as_str) == Some(FENCED) {
            continue;
        }
        api.patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        tracing::info!(pod = %pod.name_any(), "pod fenced for the restore");
        fenced += 1;
    }
    Ok(fenced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_success_comes_from_the_stored_status_of_a_succeeded_run() {
        let group: MysqlFailoverGroup = serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
            "metadata": {"name": "orders", "namespace": "db"},
            "spec": {"image": "mysql:9.7.4", "sites": [{"name": "iad"}],
                     "dns": {"hostname": "db.example.com"},
                     "initFromBackup": {"source": {"s3": {"bucket": "b", "prefix": "p/backups/x",
                                                          "credentialsSecret": "s"}}},
                     "restoreInPlace": {"confirm": "2026-12-02T10:00:00Z",
                                        "source": {"mysqlBackupRef": {"name": "nightly-1"}}}},
            "status": {
                "restore": {"phase": "Succeeded", "startTime": "2026-12-01T10:00:00Z",
                            "completionTime": "2026-12-01T10:05:00Z", "sourceSizeBytes": 10},
                "restoreInPlace": {"phase": "Running", "startTime": "2026-12-02T10:00:00Z"}
            }
        }))
        .unwrap();
        let none = |_: &str| None;
        let runs = wanted(&group);
        let init = last_success(&group, &none, &runs[0]).expect("a succeeded init");
        assert_eq!(init.profile, "external");
        assert_eq!(init.finished.since(init.started).as_secs(), 300);
        assert_eq!(init.bytes, 10);
        assert!(
            last_success(&group, &none, &runs[1]).is_none(),
            "not finished"
        );
    }

    #[test]
    fn a_run_under_way_keeps_its_recorded_scope_and_a_new_one_takes_the_specs() {
        let group = |phase: &str, scope: &str, include: &[&str]| -> MysqlFailoverGroup {
            serde_json::from_value(json!({
                "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
                "metadata": {"name": "orders", "namespace": "db"},
                "spec": {"image": "mysql:9.7.4", "sites": [{"name": "iad"}],
                         "dns": {"hostname": "db.example.com"},
                         "restoreInPlace": {"confirm": "2026-12-02T10:00:00Z",
                                            "source": {"mysqlBackupRef": {"name": "nightly-1"}},
                                            "loadOptions": {"includeSchemas": include}}},
                "status": {"restoreInPlace": {"phase": phase, "scope": scope}}
            }))
            .unwrap()
        };
        let shop = RestoreScope::Schema("shop".into());
        // An edit of the spec during a run changes nothing about it: the loop of a full
        // run stays stopped, and a one-schema run is never fenced or frozen.
        for phase in ["Fencing", "Restoring", "Resuming"] {
            let g = group(phase, "full", &["shop"]);
            assert_eq!(wanted(&g)[0].scope(), RestoreScope::Full, "{phase}");
            let g = group(phase, "schema:shop", &[]);
            assert_eq!(wanted(&g)[0].scope(), shop, "{phase}");
        }
        // Between runs the spec decides; inputs that cannot run read as full (their run
        // fails to build before it begins).
        for phase in ["Succeeded", "Failed", ""] {
            assert_eq!(wanted(&group(phase, "full", &["shop"]))[0].scope(), shop);
            let two = group(phase, "schema:shop", &["shop", "billing"]);
            assert_eq!(wanted(&two)[0].scope(), RestoreScope::Full);
        }
    }

    #[test]
    fn the_status_patch_tests_the_run_phase_and_removes_nulls() {
        let current = json!({"activeSite": "iad",
            "restoreInPlace": {"phase": "Succeeded", "completionTime": "t", "reclonedSites": ["pdx"]}});
        let ops = status_patch(
            &current,
            "restoreInPlace",
            &json!({"phase": "Fencing", "completionTime": null, "startTime": null, "reclonedSites": []}),
        );
        assert_eq!(
            ops,
            json!([
                {"op": "test", "path": "/status/restoreInPlace/phase", "value": "Succeeded"},
                {"op": "remove", "path": "/status/restoreInPlace/completionTime"},
                {"op": "add", "path": "/status/restoreInPlace/phase", "value": "Fencing"},
                {"op": "add", "path": "/status/restoreInPlace/reclonedSites", "value": []},
            ])
        );
        // No run yet, or no status at all: the object is added whole, nulls left out.
        assert_eq!(
            status_patch(
                &json!({"activeSite": "iad"}),
                "restore",
                &json!({"phase": "Running", "x": null})
            ),
            json!([{"op": "add", "path": "/status/restore", "value": {"phase": "Running"}}])
        );
        assert_eq!(
            status_patch(&Value::Null, "restore", &json!({"phase": "Running"})),
            json!([{"op": "add", "path": "/status", "value": {"restore": {"phase": "Running"}}}])
        );
    }
}
