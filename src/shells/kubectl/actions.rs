//! The plugin's API calls: list or get groups, write a request annotation, watch the
//! group until the operator reports the outcome; create a backup or a verification and
//! watch it until it finishes; arm an in-place restore and follow it in the group's status.

use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use k8s_openapi::jiff;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use tracing::Instrument as _;

use super::args::{
    BackupArgs, BackupsArgs, FailoverArgs, KubectlArgs, KubectlCommand, OutputFormat, RecloneArgs,
    RestoreArgs, StatusArgs, VerifyBackupArgs, WaitArgs,
};
use super::backups::{self as runs, RunState, VerificationRequest};
use super::progress::{Progress, failover_progress};
use super::restores;
use super::table::{GroupSummary, render_table, summarize};
use super::{KubectlError, connect, kubeconfig_user};
use crate::api::annotations::{PLANNED_FAILOVER, RECLONE_SITE};
use crate::api::{MysqlBackup, MysqlBackupVerification, MysqlFailoverGroup};

/// The field manager of the plugin's writes.
pub const FIELD_MANAGER: &str = "kubectl-bloodraven";

pub async fn dispatch(args: &KubectlArgs) -> Result<(), KubectlError> {
    let (client, namespace) = connect(&args.connection).await?;
    match &args.command {
        KubectlCommand::Status(a) => {
            let span =
                tracing::info_span!("kubectl_status", %namespace, group = a.group.as_deref());
            status(client, &namespace, a).instrument(span).await
        }
        KubectlCommand::Failover(a) => {
            let span = tracing::info_span!("kubectl_failover", %namespace, group = %a.group, target = %a.to);
            Box::pin(failover(client, &namespace, a).instrument(span)).await
        }
        KubectlCommand::Reclone(a) => {
            let span = tracing::info_span!("kubectl_reclone", %namespace, group = %a.group, site = %a.site);
            reclone(client, &namespace, a).instrument(span).await
        }
        KubectlCommand::Backup(a) => {
            let span = tracing::info_span!("kubectl_backup", %namespace, group = %a.group, profile = %a.profile);
            let user = kubeconfig_user(&args.connection);
            Box::pin(backup(client, &namespace, a, user.as_deref()).instrument(span)).await
        }
        KubectlCommand::VerifyBackup(a) => {
            let span = tracing::info_span!("kubectl_verify_backup", %namespace, group = %a.group, profile = %a.profile);
            let user = kubeconfig_user(&args.connection);
            Box::pin(verify_backup(client, &namespace, a, user.as_deref()).instrument(span)).await
        }
        KubectlCommand::Backups(a) => {
            let span = tracing::info_span!("kubectl_backups", %namespace, group = %a.group);
            backups(client, &namespace, a).instrument(span).await
        }
        KubectlCommand::Restore(a) => {
            let span = tracing::info_span!("kubectl_restore", %namespace, group = %a.group, backup = %a.backup);
            Box::pin(restore(client, &namespace, a))
                .instrument(span)
                .await
        }
    }
}

/// The text of `value` in `format`; `table` renders the human form.
fn render<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<String, KubectlError> {
    match format {
        OutputFormat::Table => Ok(table()),
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| KubectlError::Output(e.to_string())),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(value).map_err(|e| KubectlError::Output(e.to_string()))
        }
    }
}

async fn status(
    client: kube::Client,
    namespace: &str,
    args: &StatusArgs,
) -> Result<(), KubectlError> {
    let groups: Vec<MysqlFailoverGroup> = match (&args.group, args.all_namespaces) {
        (Some(name), _) => vec![get(&client, namespace, name).await?],
        (None, true) => list(Api::all(client)).await?,
        (None, false) => list(Api::namespaced(client, namespace)).await?,
    };
    let summaries: Vec<GroupSummary> = groups.iter().map(summarize).collect();
    let text = match args.output {
        OutputFormat::Table => {
            render_table(&summaries, args.all_namespaces, jiff::Timestamp::now())
        }
        // One group by name is an object, as `kubectl get NAME -o json` prints it.
        OutputFormat::Json => match (&args.group, summaries.as_slice()) {
            (Some(_), [one]) => serde_json::to_string_pretty(one),
            _ => serde_json::to_string_pretty(&serde_json::json!({ "items": summaries })),
        }
        .map(|s| s + "\n")
        .map_err(|e| KubectlError::Output(e.to_string()))?,
        OutputFormat::Yaml => match (&args.group, summaries.as_slice()) {
            (Some(_), [one]) => serde_saphyr::to_string(one),
            _ => serde_saphyr::to_string(&serde_json::json!({ "items": summaries })),
        }
        .map_err(|e| KubectlError::Output(e.to_string()))?,
    };
    print!("{text}");
    Ok(())
}

async fn list(api: Api<MysqlFailoverGroup>) -> Result<Vec<MysqlFailoverGroup>, KubectlError> {
    let mut items = api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error("listing MysqlFailoverGroups", e))?
        .items;
    items.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(items)
}

async fn get(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<MysqlFailoverGroup, KubectlError> {
    Api::<MysqlFailoverGroup>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| api_error(&format!("reading MysqlFailoverGroup {namespace}/{name}"), e))?
        .ok_or_else(|| KubectlError::NotFound {
            kind: "MysqlFailoverGroup",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

fn api_error(what: &str, source: kube::Error) -> KubectlError {
    KubectlError::Api {
        what: what.to_owned(),
        source: Box::new(source),
    }
}

/// Writes one annotation with a JSON merge patch (nothing else of the object changes).
async fn annotate(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    key: &str,
    value: &str,
) -> Result<MysqlFailoverGroup, KubectlError> {
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    Api::<MysqlFailoverGroup>::namespaced(client.clone(), namespace)
        .patch(
            group,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            api_error(
                &format!("annotating MysqlFailoverGroup {namespace}/{group}"),
                e,
            )
        })
}

fn site_names(group: &MysqlFailoverGroup) -> String {
    group
        .spec
        .sites
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn failover(
    client: kube::Client,
    namespace: &str,
    args: &FailoverArgs,
) -> Result<(), KubectlError> {
    let group = get(&client, namespace, &args.group).await?;
    let target = args.to.as_str();
    let Some(site) = group.spec.sites.iter().find(|s| s.name == target) else {
        return Err(KubectlError::Invalid(format!(
            "group {} has no site {target} (sites: {})",
            args.group,
            site_names(&group)
        )));
    };
    if !site.role.is_candidate() {
        return Err(KubectlError::Invalid(format!(
            "site {target} is not a primary-candidate; only those can be promoted"
        )));
    }
    let status = group.status.clone();
    if status.as_ref().and_then(|s| s.active_site.as_deref()) == Some(target) {
        println!(
            "{target} is already the primary of {namespace}/{}",
            args.group
        );
        return Ok(());
    }
    let before = status.and_then(|s| s.planned_failover);
    let requested_at = jiff::Timestamp::now();
    let value = match args.max_lag_wait {
        Some(wait) => format!("{target}:maxLagWait={}s", wait.as_secs().max(1)),
        None => target.to_owned(),
    };
    annotate(&client, namespace, &args.group, PLANNED_FAILOVER, &value).await?;
    eprintln!(
        "requested: {PLANNED_FAILOVER}={value} on {namespace}/{}",
        args.group
    );
    if args.no_wait {
        return Ok(());
    }
    let message = Box::pin(wait_for_failover(
        &client,
        namespace,
        args,
        before.as_ref(),
        requested_at,
    ))
    .await?;
    println!("failover of {namespace}/{} done: {message}", args.group);
    Ok(())
}

/// How long to pause after a watch error before the stream tries again.
const WATCH_RETRY: Duration = Duration::from_secs(1);
/// How often the group's Events are checked for a refusal of the request.
const EVENT_POLL: Duration = Duration::from_secs(2);

/// A `PlannedFailoverRejected` Event about `group` since `since`: the operator refused
/// the request without touching the status. A failed read (no RBAC on Events) is no answer.
async fn rejected(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    since: jiff::Timestamp,
) -> Option<String> {
    let params = ListParams::default().fields(&format!(
        "involvedObject.name={group},reason={}",
        super::progress::REJECTED_REASON
    ));
    match Api::<KubeEvent>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
    {
        Ok(list) => super::progress::rejection(&list.items, group, since),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the group's Events");
            None
        }
    }
}

/// Watches the group until its status reports the outcome, the operator refuses the
/// request (an Event), or `args.timeout` passes.
async fn wait_for_failover(
    client: &kube::Client,
    namespace: &str,
    args: &FailoverArgs,
    before: Option<&crate::api::failover_group_status::PlannedFailoverStatus>,
    requested_at: jiff::Timestamp,
) -> Result<String, KubectlError> {
    let api = Api::<MysqlFailoverGroup>::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut last = "waiting for the operator to take the request".to_owned();
    let stream = watcher::watch_object(api, &args.group);
    futures_util::pin_mut!(stream);
    let mut events = tokio::time::interval(EVENT_POLL);
    events.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                return Err(KubectlError::Timeout {
                    timeout: format!("{}s", args.timeout.as_secs()),
                    last,
                });
            }
            _ = events.tick() => {
                if let Some(message) = rejected(client, namespace, &args.group, requested_at).await {
                    return Err(KubectlError::Failed {
                        target: args.to.clone(),
                        message: format!("the operator refused the request: {message}"),
                    });
                }
                continue;
            }
            next = stream.next() => next,
        };
        let Some(event) = next else {
            return Err(KubectlError::Invalid("the watch ended".to_owned()));
        };
        let group = match event {
            Ok(Some(group)) => group,
            Ok(None) => {
                return Err(KubectlError::NotFound {
                    kind: "MysqlFailoverGroup",
                    namespace: namespace.to_owned(),
                    name: args.group.clone(),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "watch failed; retrying");
                tokio::time::sleep(WATCH_RETRY).await;
                continue;
            }
        };
        match failover_progress(before, group.status.as_ref(), &args.to) {
            Progress::Done(message) => return Ok(message),
            Progress::Failed(message) => {
                return Err(KubectlError::Failed {
                    target: args.to.clone(),
                    message,
                });
            }
            Progress::Waiting(text) => {
                if text != last {
                    eprintln!("{text}");
                    last = text;
                }
            }
        }
    }
}

async fn reclone(
    client: kube::Client,
    namespace: &str,
    args: &RecloneArgs,
) -> Result<(), KubectlError> {
    if !args.confirm {
        return Err(KubectlError::Refused(format!(
            "a reclone discards every transaction only site {} has and copies the primary's \
             data over it; run again with --confirm",
            args.site
        )));
    }
    let group = get(&client, namespace, &args.group).await?;
    if !group.spec.sites.iter().any(|s| s.name == args.site) {
        return Err(KubectlError::Invalid(format!(
            "group {} has no site {} (sites: {})",
            args.group,
            args.site,
            site_names(&group)
        )));
    }
    if group.status.as_ref().and_then(|s| s.active_site.as_deref()) == Some(args.site.as_str()) {
        return Err(KubectlError::Invalid(format!(
            "site {} is the primary; a reclone copies the primary onto another site",
            args.site
        )));
    }
    let value = format!("{}:confirm={}", args.site, args.group);
    annotate(&client, namespace, &args.group, RECLONE_SITE, &value).await?;
    println!(
        "requested: {RECLONE_SITE}={value} on {namespace}/{}; the operator reports progress as Events and in status.sites",
        args.group
    );
    Ok(())
}

/// The group, checked to have `profile`: a wrong name is the caller's mistake (exit 2).
async fn group_with_profile(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    profile: &str,
) -> Result<MysqlFailoverGroup, KubectlError> {
    let found = get(client, namespace, group).await?;
    runs::check_profile(&found, profile).map_err(KubectlError::Invalid)?;
    Ok(found)
}

/// The MysqlBackup `name`; a missing one is the caller's mistake (exit 2).
async fn get_backup(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<MysqlBackup, KubectlError> {
    Api::<MysqlBackup>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| api_error(&format!("reading MysqlBackup {namespace}/{name}"), e))?
        .ok_or_else(|| KubectlError::NotFound {
            kind: "MysqlBackup",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

/// Creates `object` under the plugin's field manager.
async fn create<K>(api: &Api<K>, kind: &str, object: &K) -> Result<K, KubectlError>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    api.create(&params, object)
        .await
        .map_err(|e| api_error(&format!("creating {kind} {name}"), e))
}

async fn backup(
    client: kube::Client,
    namespace: &str,
    args: &BackupArgs,
    user: Option<&str>,
) -> Result<(), KubectlError> {
    let group = group_with_profile(&client, namespace, &args.group, &args.profile).await?;
    if let Some(site) = &args.source_site {
        runs::check_source_site(&group, site).map_err(KubectlError::Invalid)?;
    }
    let name = runs::run_name(&args.group, &args.profile, None, jiff::Timestamp::now());
    let request = runs::new_backup(
        &name,
        namespace,
        &args.group,
        &args.profile,
        args.source_site.as_deref(),
        &args
            .triggered_by
            .clone()
            .unwrap_or_else(|| runs::triggered_by(user)),
    );
    let api = Api::<MysqlBackup>::namespaced(client, namespace);
    let created = create(&api, "MysqlBackup", &request).await?;
    eprintln!(
        "created MysqlBackup {namespace}/{name} (group {}, profile {})",
        args.group, args.profile
    );
    let finished = if args.wait.wait {
        Box::pin(wait_for_run(
            api,
            "MysqlBackup",
            namespace,
            &name,
            &args.wait,
            runs::backup_state,
        ))
        .await?
    } else {
        created
    };
    let summary = runs::summarize_backup(&finished);
    print!(
        "{}",
        render(args.wait.output, &summary, || runs::backup_report(&summary))?
    );
    match runs::backup_state(&finished) {
        RunState::Finished { succeeded: false } => Err(KubectlError::RunFailed {
            what: format!("MysqlBackup {namespace}/{name}"),
            message: summary
                .message
                .unwrap_or_else(|| "no message from the operator".to_owned()),
        }),
        _ => Ok(()),
    }
}

async fn verify_backup(
    client: kube::Client,
    namespace: &str,
    args: &VerifyBackupArgs,
    user: Option<&str>,
) -> Result<(), KubectlError> {
    group_with_profile(&client, namespace, &args.group, &args.profile).await?;
    if let Some(name) = &args.backup {
        let backup = get_backup(&client, namespace, name).await?;
        runs::check_backup_to_verify(&backup, &args.group, &args.profile)
            .map_err(KubectlError::Invalid)?;
    }
    let name = runs::run_name(
        &args.group,
        &args.profile,
        Some("verify"),
        jiff::Timestamp::now(),
    );
    let request = runs::new_verification(
        &name,
        namespace,
        &args.group,
        &args.profile,
        &VerificationRequest {
            backup: args.backup.as_deref(),
            sanity_query: args.sanity_query.as_deref(),
            min_rows: args.min_rows,
        },
        &args
            .triggered_by
            .clone()
            .unwrap_or_else(|| runs::triggered_by(user)),
    );
    let api = Api::<MysqlBackupVerification>::namespaced(client, namespace);
    let created = create(&api, "MysqlBackupVerification", &request).await?;
    eprintln!(
        "created MysqlBackupVerification {namespace}/{name} (group {}, profile {})",
        args.group, args.profile
    );
    let finished = if args.wait.wait {
        Box::pin(wait_for_run(
            api,
            "MysqlBackupVerification",
            namespace,
            &name,
            &args.wait,
            runs::verification_state,
        ))
        .await?
    } else {
        created
    };
    let summary = runs::summarize_verification(&finished);
    print!(
        "{}",
        render(args.wait.output, &summary, || runs::verification_report(
            &summary
        ))?
    );
    match runs::verification_state(&finished) {
        RunState::Finished { succeeded: false } => Err(KubectlError::RunFailed {
            what: format!("MysqlBackupVerification {namespace}/{name}"),
            message: summary
                .sanity_error
                .or(summary.message)
                .unwrap_or_else(|| "no message from the operator".to_owned()),
        }),
        _ => Ok(()),
    }
}

/// Watches the run `name` until its status says Succeeded or Failed (the object is
/// returned either way) or `wait.timeout` passes. Phases in between go to stderr.
async fn wait_for_run<K>(
    api: Api<K>,
    kind: &'static str,
    namespace: &str,
    name: &str,
    wait: &WaitArgs,
    state: impl Fn(&K) -> RunState,
) -> Result<K, KubectlError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + wait.timeout;
    let mut last = "waiting for the operator to take the request".to_owned();
    let stream = watcher::watch_object(api, name);
    futures_util::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                // The run is not cancelled: it goes on in the cluster.
                return Err(KubectlError::Timeout {
                    timeout: format!("{}s", wait.timeout.as_secs()),
                    last: format!("{kind} {namespace}/{name}: {last} (it goes on in the cluster)"),
                });
            }
            next = stream.next() => next,
        };
        let Some(event) = next else {
            return Err(KubectlError::Invalid("the watch ended".to_owned()));
        };
        let object = match event {
            Ok(Some(object)) => object,
            Ok(None) => {
                return Err(KubectlError::NotFound {
                    kind,
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "watch failed; retrying");
                tokio::time::sleep(WATCH_RETRY).await;
                continue;
            }
        };
        match state(&object) {
            RunState::Finished { .. } => return Ok(object),
            RunState::Waiting(text) => {
                if text != last {
                    eprintln!("{text}");
                    last = text;
                }
            }
        }
    }
}

async fn backups(
    client: kube::Client,
    namespace: &str,
    args: &BackupsArgs,
) -> Result<(), KubectlError> {
    let group = get(&client, namespace, &args.group).await?;
    if let Some(profile) = &args.profile {
        runs::check_profile(&group, profile).map_err(KubectlError::Invalid)?;
    }
    let all = Api::<MysqlBackup>::namespaced(client, namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(&format!("listing MysqlBackups in {namespace}"), e))?
        .items;
    let list = runs::group_backups(&all, &args.group, args.profile.as_deref());
    let text = render(args.output, &serde_json::json!({ "items": list }), || {
        runs::render_backups_table(&list, jiff::Timestamp::now())
    })?;
    print!("{text}");
    Ok(())
}

async fn restore(
    client: kube::Client,
    namespace: &str,
    args: &RestoreArgs,
) -> Result<(), KubectlError> {
    if !args.confirm {
        let what = match &args.schema {
            Some(schema) => format!(
                "a restore of schema {schema} replaces it on the primary of {} with its copy \
                 in backup {}, and the other sites follow by replication",
                args.group, args.backup
            ),
            None => format!(
                "a restore replaces every user schema on the primary of {} with backup {} and \
                 reclones the other sites",
                args.group, args.backup
            ),
        };
        return Err(KubectlError::Refused(format!(
            "{what}: what was written there since the backup is gone; run again with --confirm"
        )));
    }
    let group = get(&client, namespace, &args.group).await?;
    let name = &args.backup;
    let backup = get_backup(&client, namespace, name).await?;
    restores::check_restorable(&group, &backup).map_err(KubectlError::Invalid)?;
    let used = group
        .status
        .as_ref()
        .and_then(|s| s.restore_in_place.as_ref())
        .and_then(|r| r.confirm_token_used.clone());
    let token = restores::next_token(jiff::Timestamp::now(), used.as_deref());
    let api = Api::<MysqlFailoverGroup>::namespaced(client, namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patched = api
        .patch(
            &args.group,
            &params,
            &Patch::Merge(restores::restore_patch(
                name,
                &token,
                args.schema.as_deref(),
            )),
        )
        .await
        .map_err(|e| {
            api_error(
                &format!("setting spec.restoreInPlace on {namespace}/{}", args.group),
                e,
            )
        })?;
    eprintln!(
        "requested: restore of {namespace}/{} from MysqlBackup {name} (confirm {token})",
        args.group
    );
    let finished = if args.wait.wait {
        let state = |g: &MysqlFailoverGroup| restores::restore_state(g, &token);
        Box::pin(wait_for_run(
            api,
            "MysqlFailoverGroup",
            namespace,
            &args.group,
            &args.wait,
            state,
        ))
        .await?
    } else {
        patched
    };
    let summary = restores::summarize_restore(&finished, name, &token);
    print!(
        "{}",
        render(args.wait.output, &summary, || restores::restore_report(
            &summary
        ))?
    );
    match restores::restore_state(&finished, &token) {
        RunState::Finished { succeeded: false } => Err(KubectlError::RunFailed {
            what: format!("restore of {namespace}/{}", args.group),
            message: summary
                .message
                .unwrap_or_else(|| "no message from the operator".to_owned()),
        }),
        _ => Ok(()),
    }
}
