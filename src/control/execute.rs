//! Running one decided action through the MySQL port, each bounded by an outer deadline on
//! top of the adapter's own (a hung server must never hold the loop).

use std::future::Future;
use std::time::Duration;

use crate::error::{Categorized, Category};
use crate::failover::{Action, ActionKind, ActionValue, DrainResult, OutcomeResult};
use crate::ports::mysql::{DbError, DrainOutcome, MysqlSite, SourceEndpoint};

/// Deadlines for actions, beyond which the loop gives up waiting.
#[derive(Debug, Clone, Copy)]
pub(super) struct ActionDeadlines {
    pub op: Duration,
    pub clone: Duration,
}

/// Runs `action` (anything but a hook) against `site`; `endpoint_of` resolves the source
/// or donor site named in the action.
pub(super) async fn run<S: MysqlSite>(
    site: &S,
    action: &Action,
    deadlines: ActionDeadlines,
    endpoint_of: impl Fn(&str) -> Option<SourceEndpoint>,
) -> OutcomeResult {
    let base = action.deadline.unwrap_or(deadlines.op);
    match &action.kind {
        ActionKind::Fence { .. } => bounded(base, site.fence(), |()| ActionValue::Done).await,
        ActionKind::KillConnections { opened_by, .. } => {
            bounded(
                base,
                site.kill_app_connections(*opened_by),
                ActionValue::Killed,
            )
            .await
        }
        ActionKind::DrainRelay { budget, .. } => {
            bounded(
                budget.saturating_add(base),
                site.drain_relay_log(*budget),
                |outcome| ActionValue::Drained {
                    outcome: match outcome {
                        DrainOutcome::Drained => DrainResult::Drained,
                        DrainOutcome::BudgetExhausted => DrainResult::BudgetExhausted,
                        DrainOutcome::NotAReplica => DrainResult::NotAReplica,
                    },
                },
            )
            .await
        }
        ActionKind::Promote { .. } => {
            bounded(base, site.promote(), |gtid| ActionValue::Promoted { gtid }).await
        }
        ActionKind::Unfence { .. } => bounded(base, site.unfence(), |()| ActionValue::Done).await,
        ActionKind::ReplicateFrom {
            source_site, reset, ..
        } => {
            let Some(source) = endpoint_of(source_site) else {
                return failed(Category::Internal);
            };
            bounded(base, site.replicate_from(&source, *reset), |()| {
                ActionValue::Done
            })
            .await
        }
        ActionKind::WaitForGtid { gtid, timeout, .. } => {
            bounded(
                timeout.saturating_add(base),
                site.wait_for_gtid(gtid, *timeout),
                |reached| ActionValue::GtidWait { reached },
            )
            .await
        }
        ActionKind::Clone { donor_site, .. } => {
            let Some(donor) = endpoint_of(donor_site) else {
                return failed(Category::Internal);
            };
            bounded(deadlines.clone, site.clone_from(&donor), |()| {
                ActionValue::Done
            })
            .await
        }
        // Hooks never reach the port; the loop fires them.
        ActionKind::RunHook { .. } => failed(Category::Internal),
    }
}

fn failed(category: Category) -> OutcomeResult {
    OutcomeResult::Failed { category }
}

async fn bounded<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, DbError>>,
    value: impl FnOnce(T) -> ActionValue,
) -> OutcomeResult {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(v)) => OutcomeResult::Ok { value: value(v) },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "action failed");
            failed(e.category())
        }
        Err(_) => {
            tracing::warn!(deadline_ms = deadline.as_millis(), "action timed out");
            failed(Category::Timeout)
        }
    }
}
