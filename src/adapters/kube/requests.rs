//! Every request the operator's kube client sends, counted by RBAC verb, API group and
//! resource (`bloodraven_kube_requests_total`).
//!
//! Two uses: operators see what the controllers cost the API server, and a test compares
//! the verbs actually used with the RBAC the install manifests grant, so the manifests hold
//! exactly what the binary needs.

use http::{Method, Request};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Resources the operator is expected to call; anything else is counted as `other`, so a
/// bug can never grow the label set without bound.
const KNOWN_RESOURCES: [&str; 20] = [
    "configmaps",
    "cronjobs",
    "deployments",
    "dnsendpoints",
    "events",
    "leases",
    "mysqlbackups",
    "mysqlbackups/status",
    "mysqlbackupverifications",
    "mysqlbackupverifications/status",
    "mysqlfailovergroups",
    "mysqlfailovergroups/status",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "poddisruptionbudgets",
    "pods",
    "secrets",
    "services",
    "jobs",
];

/// The RBAC view of one request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource, with `/subresource` when there is one.
    pub resource: String,
}

/// Classifies a request path the way the API server's RBAC authorizer does; `None` for
/// paths that are not resource requests (discovery, `/version`).
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Option<RequestLabels> {
    let mut parts = path.trim_matches('/').split('/');
    let group = match parts.next()? {
        "api" => {
            parts.next()?; // version
            String::new()
        }
        "apis" => {
            let group = parts.next()?.to_owned();
            parts.next()?; // version
            group
        }
        _ => return None,
    };
    let mut rest: Vec<&str> = parts.collect();
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        rest.drain(..2);
    }
    let (resource, name, sub) = match rest.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
        _ => return None,
    };
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    };
    let full = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let (group, resource) = if KNOWN_RESOURCES.contains(&full.as_str()) {
        (group, full)
    } else {
        ("other".to_owned(), "other".to_owned())
    };
    Some(RequestLabels {
        verb,
        group,
        resource,
    })
}

/// The counter family; cheap to clone (it is shared).
#[derive(Debug, Clone, Default)]
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl RequestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "kube_requests",
            "Requests the operator sent to the Kubernetes API, by RBAC verb, API group and resource",
            self.requests.clone(),
        );
    }

    /// Counts `request`; returns it unchanged (for `tower::util::MapRequestLayer`).
    pub fn record<B>(&self, request: Request<B>) -> Request<B> {
        if let Some(labels) = classify(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        ) {
            self.requests.get_or_create(&labels).inc();
        }
        request
    }

    /// A kube client whose every request is counted here.
    pub fn client(&self, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let metrics = self.clone();
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&tower::util::MapRequestLayer::new(
                move |request: Request<kube::client::Body>| metrics.record(request),
            ))
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(method: &Method, uri: &str) -> Option<(String, String, String)> {
        let (path, query) = uri
            .split_once('?')
            .map_or((uri, None), |(p, q)| (p, Some(q)));
        classify(method, path, query).map(|l| (l.verb.to_owned(), l.group, l.resource))
    }

    fn expect(verb: &str, group: &str, resource: &str) -> (String, String, String) {
        (verb.to_owned(), group.to_owned(), resource.to_owned())
    }

    #[test]
    fn requests_are_classified_like_rbac() {
        assert_eq!(
            labels(&Method::GET, "/api/v1/namespaces/db/secrets/op"),
            Some(expect("get", "", "secrets"))
        );
        assert_eq!(
            labels(
                &Method::GET,
                "/apis/apps/v1/namespaces/db/deployments?labelSelector=x&watch=true"
            ),
            Some(expect("watch", "apps", "deployments"))
        );
        assert_eq!(
            labels(&Method::GET, "/apis/apps/v1/deployments?labelSelector=x"),
            Some(expect("list", "apps", "deployments"))
        );
        assert_eq!(
            labels(
                &Method::PUT,
                "/apis/shipstream.io/v1alpha1/namespaces/db/mysqlfailovergroups/orders/status"
            ),
            Some(expect(
                "update",
                "shipstream.io",
                "mysqlfailovergroups/status"
            ))
        );
        assert_eq!(
            labels(&Method::PATCH, "/api/v1/nodes/node-1"),
            Some(expect("patch", "", "nodes"))
        );
        assert_eq!(
            labels(&Method::POST, "/api/v1/namespaces/db/events"),
            Some(expect("create", "", "events"))
        );
        assert_eq!(
            labels(&Method::GET, "/api/v1/namespaces/db/pods/p/log"),
            Some(expect("get", "other", "other"))
        );
        assert_eq!(labels(&Method::GET, "/version"), None);
        assert_eq!(labels(&Method::GET, "/apis"), None);
    }
}
