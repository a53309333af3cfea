//! One `MysqlFailoverGroup` while this replica leads: its failover loop (the same
//! [`FailoverLoop`] standalone mode runs), the status store and cluster reactions that
//! loop reports through, and the requests its annotations carry.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Endpoints, OperatorContext};
use crate::adapters::kube::reactions::{ClusterReactions, ReactionsConfig};
use crate::adapters::kube::secrets::{GroupCredentials, read_credentials};
use crate::adapters::kube::status::KubeStatusStore;
use crate::adapters::mysql::{ClientTls, MysqlSiteClient, MysqlSiteConfig};
use crate::adapters::sidecar::{HttpSidecar, TokenSource};
use crate::api::MysqlFailoverGroup;
use crate::api::annotations::{self, PLANNED_FAILOVER, RECLONE_SITE};
use crate::control::{ControlHandle, FailoverLoop, LoopParts, Reply, SiteHandle};
use crate::failover::settings::{CheckedSettings, GroupSettings};
use crate::failover::{Event, EventReason, GroupStatus, Request, SiteState};
use crate::ports::hook::NoHook;
use crate::ports::mysql::SourceEndpoint;
use crate::ports::objects::ObjectStore;
use crate::ports::observer::DecisionObserver;
use crate::ports::sidecar::SidecarStatus;
use crate::render::names;
use crate::render::rollout::RolloutPlan;
use crate::telemetry::event_log::EventLog;

/// What a running loop was built from: a change means the loop is rebuilt.
#[derive(Debug, Clone, PartialEq)]
struct LoopInputs {
    settings: CheckedSettings,
    /// Site name to `host:port`.
    addresses: BTreeMap<String, String>,
    /// The operator and replication accounts (a rotation rebuilds the MySQL clients).
    connection_fingerprint: (String, String, String, String),
    /// Site name to its sidecar's base URL, for the loop's second opinion; empty when the
    /// group runs no sidecars.
    sidecars: BTreeMap<String, String>,
    /// With `spec.tls`, the group's CA (PEM), the only roots the sidecars' certificates are
    /// checked against; a new CA rebuilds the clients.
    sidecar_ca: Option<String>,
}

/// A running failover loop and what drives it.
pub(super) struct GroupRuntime {
    inputs: LoopInputs,
    handle: ControlHandle,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    reactions: Arc<ClusterReactions>,
    store: Arc<KubeStatusStore>,
    clients: BTreeMap<String, Arc<MysqlSiteClient>>,
    /// The credentials fingerprint whose accounts were last created on the primary.
    users_applied: Option<String>,
    /// The group's sidecar token as last read (every reconcile), shared with the loop's
    /// sidecar clients so a rotation needs no rebuild.
    sidecar_token: SharedToken,
}

/// The group's sidecar token as last read, shared by the runtime and its sidecar clients.
type SharedToken = Arc<RwLock<Option<String>>>;

/// A problem with one group that stops its loop from being (re)built; reported and
/// retried on the next reconcile.
#[derive(Debug, thiserror::Error)]
pub(super) enum GroupError {
    #[error("spec{0}")]
    Settings(#[from] crate::failover::settings::SettingsError),
    #[error(transparent)]
    Secret(#[from] crate::adapters::kube::secrets::SecretError),
    #[error("site {site}: {message}")]
    Site { site: String, message: String },
    #[error(transparent)]
    Loop(#[from] crate::control::LoopError),
    #[error("the group has no credentials (legacy secretName groups are not driven)")]
    NoCredentials,
}

impl GroupError {
    /// The Event reason the reference uses.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Self::Secret(e) => e.reason(),
            Self::Settings(_) | Self::NoCredentials => "InvalidSpec",
            Self::Site { .. } | Self::Loop(_) => "FailoverLoopFailed",
        }
    }
}

fn loop_inputs(
    ctx: &OperatorContext,
    group: &MysqlFailoverGroup,
    credentials: &GroupCredentials,
    sidecar_ca: Option<String>,
) -> Result<LoopInputs, GroupError> {
    let namespace = group.namespace().unwrap_or_default();
    let name = group.name_any();
    let address = |site: &str| ctx.endpoints.address(&namespace, &name, site);
    let settings = GroupSettings::from_spec(&group.spec, |s| address(&s.name)).check()?;
    let addresses = group
        .spec
        .sites
        .iter()
        .map(|s| (s.name.clone(), address(&s.name)))
        .collect();
    Ok(LoopInputs {
        settings,
        addresses,
        sidecars: sidecar_urls(&ctx.endpoints, group, sidecar_ca.is_some()),
        sidecar_ca,
        connection_fingerprint: (
            credentials.operator.user.clone(),
            credentials.operator.password.clone(),
            credentials.replication.user.clone(),
            credentials.replication.password.clone(),
        ),
    })
}

/// Each site's sidecar, through the site's internal Service (as its peers reach it), for a
/// group that runs sidecars. With `spec.tls` the sidecars serve HTTPS with the group's
/// certificate, and their reports are worth asking for only when the group's CA is known
/// (`group_ca`): a report from a server nobody verified could be anyone's, and a forged
/// "fenced" would let a failover go ahead beside a writable primary.
fn sidecar_urls(
    endpoints: &Endpoints,
    group: &MysqlFailoverGroup,
    group_ca: bool,
) -> BTreeMap<String, String> {
    let tls = group.spec.tls.is_some();
    if !annotations::sidecar_enabled(group) || (tls && !group_ca) {
        return BTreeMap::new();
    }
    let scheme = if tls { "https" } else { "http" };
    let namespace = group.namespace().unwrap_or_default();
    let name = group.name_any();
    group
        .spec
        .sites
        .iter()
        .map(|s| {
            let address = endpoints.sidecar_address(&namespace, &name, &s.name);
            (s.name.clone(), format!("{scheme}://{address}"))
        })
        .collect()
}

/// With `spec.tls` and sidecars, the group's CA: `ca.crt` of its certificate's Secret
/// (cert-manager writes it there). `None` when the group needs none, or when it cannot be
/// read now (no second opinion until it can; the reason is logged).
async fn read_sidecar_ca(ctx: &OperatorContext, group: &MysqlFailoverGroup) -> Option<String> {
    let tls = group.spec.tls.as_ref()?;
    if !annotations::sidecar_enabled(group) {
        return None;
    }
    let namespace = group.namespace().unwrap_or_default();
    let name = group.name_any();
    let secret = tls
        .secret_name
        .clone()
        .unwrap_or_else(|| names::default_tls_secret(&name));
    match crate::adapters::kube::secrets::read_secret_text(
        &ctx.client,
        &namespace,
        &secret,
        "ca.crt",
    )
    .await
    {
        Ok(Some(ca)) => Some(ca),
        Ok(None) => {
            tracing::debug!(%namespace, group = %name, %secret, "no ca.crt in the group's certificate Secret: no second opinion from its sidecars");
            None
        }
        Err(e) => {
            tracing::debug!(%namespace, group = %name, error = %e, "cannot read the group's CA: no second opinion from its sidecars");
            None
        }
    }
}

/// Reads the group's sidecar token Secret; `None` (no second opinion) when it cannot.
async fn read_sidecar_token(ctx: &OperatorContext, namespace: &str, group: &str) -> Option<String> {
    match crate::adapters::kube::secrets::read_secret_text(
        &ctx.client,
        namespace,
        &names::sidecar_token_secret(group),
        names::SIDECAR_TOKEN_KEY,
    )
    .await
    {
        Ok(token) => token,
        Err(e) => {
            tracing::debug!(%namespace, %group, error = %e, "cannot read the sidecar token");
            None
        }
    }
}

/// The shared token and one [`HttpSidecar`] per site of a group with sidecars. The
/// client is built only then: it loads its TLS roots, which a thousand groups without
/// sidecars should not pay for.
async fn sidecar_clients(
    ctx: &OperatorContext,
    namespace: &str,
    group: &str,
    inputs: &LoopInputs,
) -> Result<(SharedToken, BTreeMap<String, Arc<dyn SidecarStatus>>), GroupError> {
    if inputs.sidecars.is_empty() {
        return Ok((Arc::new(RwLock::new(None)), BTreeMap::new()));
    }
    let token = Arc::new(RwLock::new(read_sidecar_token(ctx, namespace, group).await));
    let ca = inputs.sidecar_ca.as_deref().map(str::as_bytes);
    let http = HttpSidecar::client(ctx.loop_config.probe_deadline, ca).map_err(|message| {
        GroupError::Site {
            site: "(sidecars)".to_owned(),
            message,
        }
    })?;
    let clients = inputs
        .sidecars
        .iter()
        .map(|(site, url)| {
            let shared = Arc::clone(&token);
            let source: TokenSource = Arc::new(move || {
                shared
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            });
            let client: Arc<dyn SidecarStatus> =
                Arc::new(HttpSidecar::new(site, url, source, http.clone()));
            (site.clone(), client)
        })
        .collect();
    Ok((token, clients))
}

impl GroupRuntime {
    /// Brings `runtime` in line with `group`: builds or rebuilds the loop when its inputs
    /// changed, creates the MySQL accounts on the primary after a Secret rotation, and
    /// hands annotation requests to the loop.
    pub(super) async fn sync(
        ctx: &OperatorContext,
        runtime: Option<Self>,
        group: &Arc<MysqlFailoverGroup>,
    ) -> (Option<Self>, Result<(), GroupError>) {
        let Some(credentials_spec) = group.spec.credentials.as_ref() else {
            return (runtime, Err(GroupError::NoCredentials));
        };
        let namespace = group.namespace().unwrap_or_default();
        let credentials = match read_credentials(&ctx.client, &namespace, credentials_spec).await {
            Ok(c) => c,
            Err(e) => return (runtime, Err(e.into())),
        };
        let sidecar_ca = read_sidecar_ca(ctx, group).await;
        let inputs = match loop_inputs(ctx, group, &credentials, sidecar_ca) {
            Ok(i) => i,
            Err(e) => return (runtime, Err(e)),
        };
        let mut runtime = match runtime {
            Some(r) if r.inputs == inputs => {
                r.reactions.set_group(Arc::clone(group));
                if !r.inputs.sidecars.is_empty() {
                    let token = read_sidecar_token(ctx, &namespace, &group.name_any()).await;
                    if token.is_some() {
                        *r.sidecar_token
                            .write()
                            .unwrap_or_else(PoisonError::into_inner) = token;
                    }
                }
                r
            }
            previous => {
                if let Some(previous) = previous {
                    tracing::info!(
                        "group settings, sites or credentials changed: rebuilding its failover loop"
                    );
                    previous.stop().await;
                }
                match Self::start(ctx, group, inputs, &credentials).await {
                    Ok(r) => r,
                    Err(e) => return (None, Err(e)),
                }
            }
        };
        runtime.ensure_users(&credentials).await;
        runtime.take_requests(ctx, group).await;
        (Some(runtime), Ok(()))
    }

    async fn start(
        ctx: &OperatorContext,
        group: &Arc<MysqlFailoverGroup>,
        inputs: LoopInputs,
        credentials: &GroupCredentials,
    ) -> Result<Self, GroupError> {
        let namespace = group.namespace().unwrap_or_default();
        let name = group.name_any();
        let mut sites = Vec::with_capacity(inputs.addresses.len());
        let mut clients = BTreeMap::new();
        let (sidecar_token, sidecars) = sidecar_clients(ctx, &namespace, &name, &inputs).await?;
        for (site, address) in &inputs.addresses {
            let site_error = |message: String| GroupError::Site {
                site: site.clone(),
                message,
            };
            let mut config = MysqlSiteConfig::new(
                site,
                address,
                credentials.operator.clone(),
                credentials.replication.clone(),
            );
            // Every mysqld has a certificate (`spec.tls`'s, or the one MySQL generates at
            // initialisation), so the operator's sessions, which carry the administrative
            // password and every fencing statement, are always encrypted. The certificate
            // is not verified: a generated one has no CA to check against.
            config.client_tls = ClientTls::Required { ca: None };
            let client =
                Arc::new(MysqlSiteClient::new(config).map_err(|e| site_error(e.to_string()))?);
            clients.insert(site.clone(), Arc::clone(&client));
            sites.push(SiteHandle {
                name: site.clone(),
                endpoint: SourceEndpoint::parse(address).map_err(|e| site_error(e.to_string()))?,
                site: client,
                sidecar: sidecars.get(site).cloned(),
            });
        }
        let store = Arc::new(KubeStatusStore::new(
            ctx.client.clone(),
            &namespace,
            &name,
            &ctx.identity,
        ));
        let metrics = ctx.metrics.group_failover(&namespace, &name);
        let reactions = Arc::new(ClusterReactions::spawn_with(
            ctx.client.clone(),
            Arc::clone(group),
            Arc::clone(&store),
            Arc::clone(&ctx.objects) as Arc<dyn ObjectStore>,
            ReactionsConfig::default(),
            Some(Arc::clone(&metrics)),
        ));
        let mut loop_config = ctx.loop_config;
        loop_config.poll_interval = inputs.settings.poll_interval;
        let (failover_loop, handle) = FailoverLoop::new(LoopParts {
            sites,
            policy: inputs.settings.policy.clone(),
            config: loop_config,
            store: Arc::<KubeStatusStore>::clone(&store),
            hook: Arc::new(NoHook),
            observers: vec![
                Arc::new(EventLog) as Arc<dyn DecisionObserver>,
                metrics as Arc<dyn DecisionObserver>,
                Arc::clone(&reactions) as Arc<dyn DecisionObserver>,
            ],
        })
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("group", namespace = %namespace, group = %name);
        let task = tokio::spawn(tracing::Instrument::instrument(
            failover_loop.run(stopped(stop_rx)),
            span,
        ));
        tracing::info!(namespace = %namespace, group = %name, sites = clients.len(), "failover loop started");
        Ok(Self {
            inputs,
            handle,
            stop,
            task,
            reactions,
            store,
            clients,
            users_applied: None,
            sidecar_token,
        })
    }

    /// The failover loop's latest status (`None` before its first decision).
    pub(super) fn failover_status(&self) -> Option<GroupStatus> {
        self.handle.status()
    }

    /// Acts on the ordered update's plan: asks the loop for the switchover it calls for,
    /// and records the phase in the group's status.
    pub(super) async fn follow_rollout(&self, group: &MysqlFailoverGroup, plan: &RolloutPlan) {
        if let Some(target) = &plan.handoff {
            tracing::info!(target = %target, "ordered update: every follower is updated; handing the primary over");
            self.submit(Request::PlannedFailover {
                target: target.clone(),
                max_lag_wait: None,
            })
            .await;
        }
        let Some(phase) = plan.phase else {
            return;
        };
        let stored = group
            .status
            .as_ref()
            .and_then(|s| s.update_phase.as_deref());
        if stored == Some(phase.as_str()) {
            return;
        }
        match self.store.publish_update_phase(phase.as_str()).await {
            Ok(_) => tracing::info!(phase = phase.as_str(), "ordered update phase"),
            Err(e) => tracing::warn!(error = %e, "cannot record the ordered update phase"),
        }
    }

    /// Stops the loop; a poll in progress finishes its actions first.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// After a Secret rotation (or on first sight), creates or alters the accounts on the
    /// writable primary; the accounts replicate to the other sites.
    async fn ensure_users(&mut self, credentials: &GroupCredentials) {
        if self.users_applied.as_deref() == Some(credentials.fingerprint.as_str()) {
            return;
        }
        let Some(status) = self.handle.status() else {
            return;
        };
        let Some(active) = status.active_site.as_deref() else {
            return;
        };
        let writable = status
            .sites
            .iter()
            .any(|s| s.name == active && s.state == SiteState::Writable);
        let Some(client) = self.clients.get(active).filter(|_| writable) else {
            return;
        };
        match client.create_role_users(&credentials.users).await {
            Ok(()) => {
                tracing::info!(site = active, "MySQL accounts match the credential Secrets");
                self.users_applied = Some(credentials.fingerprint.clone());
            }
            Err(e) => {
                tracing::warn!(site = active, error = %e, "cannot create or alter the MySQL accounts; retrying on the next reconcile");
            }
        }
    }

    /// Hands the planned-failover and reclone annotations to the loop, then removes them
    /// so each is acted on once. The loop reports what it did with a request as Events of
    /// its own; a request refused here (malformed, wrong proof) gets its Event here.
    async fn take_requests(&self, ctx: &OperatorContext, group: &MysqlFailoverGroup) {
        let annotations = group.annotations();
        if let Some(value) = annotations.get(PLANNED_FAILOVER) {
            match annotations::planned_failover(value) {
                Ok(r) => {
                    self.submit(Request::PlannedFailover {
                        target: r.target,
                        max_lag_wait: r.max_lag_wait,
                    })
                    .await;
                }
                Err(e) => self.refuse(EventReason::PlannedFailoverRejected, None, &e.to_string()),
            }
            remove_annotation(ctx, group, PLANNED_FAILOVER).await;
        }
        if let Some(value) = annotations.get(RECLONE_SITE) {
            match annotations::reclone(value) {
                Ok(r) => {
                    let divergent = self.handle.status().and_then(|s| {
                        s.sites
                            .iter()
                            .find(|site| site.name == r.site)
                            .and_then(|site| site.divergent_gtid.as_ref().map(ToString::to_string))
                    });
                    match r.confirmed(&group.name_any(), divergent.as_deref()) {
                        Ok(()) => self.submit(Request::Reclone { site: r.site }).await,
                        Err(e) => self.refuse(EventReason::RecloneRejected, Some(&r.site), &e),
                    }
                }
                Err(e) => self.refuse(EventReason::RecloneRejected, None, &e.to_string()),
            }
            remove_annotation(ctx, group, RECLONE_SITE).await;
        }
    }

    /// Hands `request` to the loop and answers its reply.
    pub(super) async fn request(
        &self,
        request: Request,
    ) -> Result<Reply, crate::control::RequestError> {
        self.handle.submit(request).await
    }

    async fn submit(&self, request: Request) {
        match self.request(request).await {
            Ok(Reply::Accepted { message }) => {
                tracing::info!(message = %message, "request accepted");
            }
            Ok(Reply::Rejected { reason }) => tracing::warn!(reason = %reason, "request rejected"),
            Err(e) => tracing::warn!(error = %e, "request not delivered"),
        }
    }

    fn refuse(&self, reason: EventReason, site: Option<&str>, message: &str) {
        tracing::warn!(?reason, message, "request annotation refused");
        self.reactions.report(&[Event::new(reason, site, message)]);
    }
}

/// Removes a handled request annotation (a JSON merge patch of just that key).
async fn remove_annotation(ctx: &OperatorContext, group: &MysqlFailoverGroup, annotation: &str) {
    let api: Api<MysqlFailoverGroup> =
        Api::namespaced(ctx.client.clone(), &group.namespace().unwrap_or_default());
    let patch = serde_json::json!({"metadata": {"annotations": {annotation: null}}});
    if let Err(e) = api
        .patch(
            &group.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(annotation, error = %e, "cannot remove the handled annotation");
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::failover_group::{IssuerRef, TlsSpec};
    use crate::render::tests::group;

    fn with_sidecars() -> MysqlFailoverGroup {
        let mut g = group();
        g.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(annotations::SIDECAR.to_owned(), "enabled".to_owned());
        g
    }

    #[test]
    fn sidecars_are_asked_over_https_for_tls_groups_and_only_with_the_groups_ca() {
        assert!(
            sidecar_urls(&Endpoints::services(), &group(), true).is_empty(),
            "no sidecars"
        );
        let plain = with_sidecars();
        let urls = sidecar_urls(&Endpoints::services(), &plain, false);
        assert_eq!(
            urls.get("iad").map(String::as_str),
            Some("http://mysql-orders-iad-internal.db.svc:8443")
        );
        let mut tls = with_sidecars();
        tls.spec.tls = Some(TlsSpec {
            issuer_ref: IssuerRef {
                name: "ca".to_owned(),
                ..IssuerRef::default()
            },
            secret_name: None,
        });
        assert!(
            sidecar_urls(&Endpoints::services(), &tls, false).is_empty(),
            "an unverifiable sidecar is not asked"
        );
        let urls = sidecar_urls(&Endpoints::services(), &tls, true);
        assert_eq!(urls.len(), plain.spec.sites.len());
        assert!(urls.values().all(|u| u.starts_with("https://")), "{urls:?}");
    }
}
