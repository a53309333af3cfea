//! The lease port over the Kubernetes API: one `coordination.k8s.io/v1` Lease, replaced
//! with the resourceVersion that was read, so the API server's 409 decides every race.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use crate::ports::lease::{LeaseClaim, LeaseError, LeaseRecord, LeaseStore};

/// One named Lease in one namespace.
#[derive(Clone)]
pub struct KubeLeaseStore {
    api: Api<Lease>,
    name: String,
}

impl KubeLeaseStore {
    pub fn new(client: kube::Client, namespace: &str, name: impl Into<String>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
        }
    }

    fn object(&self, claim: &LeaseClaim, version: Option<&str>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: version.map(str::to_owned),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: claim.holder.clone(),
                acquire_time: claim.acquired_at.and_then(micro_time),
                renew_time: micro_time(claim.renewed_at),
                lease_duration_seconds: Some(
                    i32::try_from(claim.duration.as_secs()).unwrap_or(i32::MAX),
                ),
                lease_transitions: Some(claim.transitions),
                ..LeaseSpec::default()
            }),
        }
    }
}

fn micro_time(t: SystemTime) -> Option<MicroTime> {
    Timestamp::try_from(t).ok().map(MicroTime)
}

fn system_time(t: &MicroTime) -> SystemTime {
    SystemTime::from(t.0)
}

fn record(lease: Lease) -> LeaseRecord {
    let spec = lease.spec.unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        acquired_at: spec.acquire_time.as_ref().map(system_time),
        renewed_at: spec.renew_time.as_ref().map(system_time),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        transitions: spec.lease_transitions.unwrap_or(0),
        version: lease.metadata.resource_version.unwrap_or_default(),
    }
}

fn error(e: &kube::Error) -> LeaseError {
    match e {
        kube::Error::Api(status) if status.code == 409 => LeaseError::Conflict,
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            LeaseError::Refused(status.message.clone())
        }
        _ => LeaseError::Unavailable(e.to_string()),
    }
}

impl LeaseStore for KubeLeaseStore {
    fn get(&self) -> BoxFuture<'_, Result<Option<LeaseRecord>, LeaseError>> {
        Box::pin(async move {
            self.api
                .get_opt(&self.name)
                .await
                .map(|lease| lease.map(record))
                .map_err(|e| error(&e))
        })
    }

    fn create<'a>(
        &'a self,
        claim: &'a LeaseClaim,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>> {
        Box::pin(async move {
            self.api
                .create(&PostParams::default(), &self.object(claim, None))
                .await
                .map(record)
                .map_err(|e| error(&e))
        })
    }

    fn replace<'a>(
        &'a self,
        claim: &'a LeaseClaim,
        version: &'a str,
    ) -> BoxFuture<'a, Result<LeaseRecord, LeaseError>> {
        Box::pin(async move {
            self.api
                .replace(
                    &self.name,
                    &PostParams::default(),
                    &self.object(claim, Some(version)),
                )
                .await
                .map(record)
                .map_err(|e| error(&e))
        })
    }
}
