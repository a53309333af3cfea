//! Whole-group rendering: names, labels, ownership, rolling scope and determinism.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PodSecurityContext, PodSpec, SecretVolumeSource, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::api::failover_group::{
    DnsSpec, IssuerRef, ServiceTemplate, ServiceType, SiteRole, TlsSpec, TrafficPolicy,
};

fn site(name: &str, role: SiteRole) -> SiteSpec {
    SiteSpec {
        name: name.to_owned(),
        role,
        zone: Some(format!("zone-{name}")),
        taint_node_selector: BTreeMap::from([(
            "shipstream.io/site.orders".to_owned(),
            name.to_owned(),
        )]),
        lb_ip: Some("10.0.0.1".to_owned()),
        ..SiteSpec::default()
    }
}

/// Two primary-candidate sites, `iad` and `pdx`, in namespace `db` (also the reconcile
/// tests' group).
pub(crate) fn group() -> MysqlFailoverGroup {
    let spec = MysqlFailoverGroupSpec {
        image: "mysql:9.7.4".to_owned(),
        sites: vec![
            site("iad", SiteRole::PrimaryCandidate),
            site("pdx", SiteRole::PrimaryCandidate),
        ],
        dns: DnsSpec {
            hostname: "orders-db.example.com".to_owned(),
            ttl: 60,
        },
        termination_grace_period_seconds: 60,
        clone_timeout: 3600,
        ..MysqlFailoverGroupSpec::default()
    };
    let mut group = MysqlFailoverGroup::new("orders", spec);
    group.metadata = ObjectMeta {
        name: Some("orders".to_owned()),
        namespace: Some("db".to_owned()),
        uid: Some("0b9c4f6e-1111-2222-3333-444455556666".to_owned()),
        ..ObjectMeta::default()
    };
    group
}

fn checksums(objects: &DesiredObjects) -> Vec<String> {
    objects
        .deployments
        .iter()
        .map(|d| {
            let template = &d.spec.as_ref().unwrap().template;
            let annotations = template.metadata.as_ref().unwrap().annotations.as_ref();
            annotations.unwrap()[names::ANNOTATION_CONFIG_CHECKSUM].clone()
        })
        .collect()
}

#[test]
fn renders_every_object_with_its_name_labels_and_owner() {
    let objects = render(&group(), &RenderOptions::default()).unwrap();
    let values = objects.to_values().unwrap();
    let listed: Vec<(String, String)> = values
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_owned(),
                v["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("ConfigMap", "mysql-orders-config"),
        ("PersistentVolumeClaim", "mysql-orders-iad-data"),
        ("PersistentVolumeClaim", "mysql-orders-pdx-data"),
        ("Deployment", "mysql-orders-iad"),
        ("Deployment", "mysql-orders-pdx"),
        ("Service", "mysql-orders-iad"),
        ("Service", "mysql-orders-iad-internal"),
        ("Service", "mysql-orders-pdx"),
        ("Service", "mysql-orders-pdx-internal"),
        ("Service", "mysql-orders-primary"),
        ("Service", "mysql-orders-replicas"),
        ("PodDisruptionBudget", "mysql-orders"),
    ];
    assert_eq!(
        listed,
        want.iter()
            .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
            .collect::<Vec<_>>()
    );
    for v in &values {
        let meta = &v["metadata"];
        assert_eq!(meta["namespace"], "db");
        assert_eq!(meta["labels"]["app.kubernetes.io/name"], "mysql");
        assert_eq!(meta["labels"]["app.kubernetes.io/instance"], "orders");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "bloodraven");
        assert_eq!(meta["labels"]["shipstream.io/failover-group"], "orders");
        let owner = &meta["ownerReferences"][0];
        assert_eq!(owner["apiVersion"], "shipstream.io/v1alpha1");
        assert_eq!(owner["kind"], "MysqlFailoverGroup");
        assert_eq!(owner["name"], "orders");
        assert_eq!(owner["uid"], "0b9c4f6e-1111-2222-3333-444455556666");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
    }
    let iad = &values[3];
    assert_eq!(iad["metadata"]["labels"]["shipstream.io/site"], "iad");
    assert_eq!(iad["spec"]["replicas"], 1);
    assert_eq!(iad["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        objects
            .pod_disruption_budget
            .spec
            .as_ref()
            .unwrap()
            .min_available,
        Some(IntOrString::Int(1))
    );
}

#[test]
fn services_select_what_the_failover_loop_labels() {
    let objects = render(&group(), &RenderOptions::default()).unwrap();
    let by_name: BTreeMap<&str, &Service> = objects
        .services
        .iter()
        .map(|s| (s.metadata.name.as_deref().unwrap(), s))
        .collect();
    let spec = |n: &str| by_name[n].spec.as_ref().unwrap();
    let internal = spec("mysql-orders-iad-internal");
    assert_eq!(internal.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(internal.publish_not_ready_addresses, Some(true));
    assert!(
        !internal
            .selector
            .as_ref()
            .unwrap()
            .contains_key("shipstream.io/healthy")
    );
    assert_eq!(
        spec("mysql-orders-iad").selector.as_ref().unwrap()["shipstream.io/healthy"],
        "yes"
    );
    assert_eq!(
        spec("mysql-orders-primary").selector.as_ref().unwrap()["shipstream.io/role"],
        "primary"
    );
    let replicas = spec("mysql-orders-replicas").selector.as_ref().unwrap();
    assert_eq!(replicas["shipstream.io/role"], "replica");
    assert_eq!(replicas["shipstream.io/healthy"], "yes");
}

#[test]
fn service_templates_overlay_and_never_reach_internal_services() {
    let mut g = group();
    g.spec.service_template = Some(ServiceTemplate {
        service_type: Some(ServiceType::LoadBalancer),
        external_traffic_policy: Some(TrafficPolicy::Local),
        node_port: None,
        annotations: BTreeMap::from([("a".to_owned(), "group".to_owned())]),
    });
    g.spec.sites[1].service_template = Some(ServiceTemplate {
        service_type: Some(ServiceType::ClusterIP),
        annotations: BTreeMap::from([("a".to_owned(), "site".to_owned())]),
        ..ServiceTemplate::default()
    });
    let objects = render(&g, &RenderOptions::default()).unwrap();
    let find = |n: &str| {
        objects
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let iad = find("mysql-orders-iad");
    assert_eq!(
        iad.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    assert_eq!(
        iad.spec
            .as_ref()
            .unwrap()
            .external_traffic_policy
            .as_deref(),
        Some("Local")
    );
    let pdx = find("mysql-orders-pdx");
    assert_eq!(
        pdx.spec.as_ref().unwrap().type_.as_deref(),
        Some("ClusterIP")
    );
    // Refused by the API server on a ClusterIP, so never rendered there.
    assert_eq!(pdx.spec.as_ref().unwrap().external_traffic_policy, None);
    assert_eq!(pdx.metadata.annotations.as_ref().unwrap()["a"], "site");
    let internal = find("mysql-orders-iad-internal");
    assert_eq!(
        internal.spec.as_ref().unwrap().type_.as_deref(),
        Some("ClusterIP")
    );
    assert_eq!(internal.metadata.annotations, None);
    assert_eq!(
        find("mysql-orders-primary")
            .spec
            .as_ref()
            .unwrap()
            .type_
            .as_deref(),
        Some("LoadBalancer")
    );
}

#[test]
fn rendering_is_deterministic() {
    let a = render(&group(), &RenderOptions::default()).unwrap();
    let b = render(&group(), &RenderOptions::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a.to_values().unwrap()).unwrap(),
        serde_json::to_string(&b.to_values().unwrap()).unwrap()
    );
}

#[test]
fn a_site_override_rolls_only_that_site() {
    let before = render(&group(), &RenderOptions::default()).unwrap();
    let mut g = group();
    g.spec.sites[1].mysql_conf = BTreeMap::from([("max_connections".to_owned(), "900".to_owned())]);
    let after = render(&g, &RenderOptions::default()).unwrap();
    let (b, a) = (checksums(&before), checksums(&after));
    assert_eq!(b[0], a[0], "iad's pod template must not change");
    assert_ne!(b[1], a[1], "pdx's pod template must change");
    assert_eq!(before.deployments[0], after.deployments[0]);
    let data = after.config_map.data.as_ref().unwrap();
    assert!(data["pdx.cnf"].contains("max-connections = 900"));
    assert!(!data["iad.cnf"].contains("max-connections"));
    // A group-wide entry rolls every site.
    let mut g = group();
    g.spec.mysql_conf = BTreeMap::from([("max_connections".to_owned(), "900".to_owned())]);
    let all = checksums(&render(&g, &RenderOptions::default()).unwrap());
    assert_ne!(all[0], b[0]);
    assert_ne!(all[1], b[1]);
}

#[test]
fn security_contexts_default_to_restricted_or_come_from_the_spec() {
    let pod = |objects: &DesiredObjects| {
        objects.deployments[0]
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .clone()
            .unwrap()
    };
    let defaults = pod(&render(&group(), &RenderOptions::default()).unwrap());
    let c = defaults.containers[0].security_context.as_ref().unwrap();
    assert_eq!(c.read_only_root_filesystem, Some(true));
    let mounts: Vec<&str> = defaults.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    for writable in ["/var/lib/mysql", "/tmp", "/var/run/mysqld"] {
        assert!(mounts.contains(&writable), "{writable} in {mounts:?}");
    }
    assert_eq!(
        defaults.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );

    let mut g = group();
    g.spec.pod_security_context = Some(PodSecurityContext {
        run_as_user: Some(1001),
        ..PodSecurityContext::default()
    });
    g.spec.container_security_context = Some(SecurityContext {
        read_only_root_filesystem: Some(false),
        ..SecurityContext::default()
    });
    let given = pod(&render(&g, &RenderOptions::default()).unwrap());
    assert_eq!(given.security_context, g.spec.pod_security_context);
    assert_eq!(
        given.containers[0].security_context,
        g.spec.container_security_context
    );
}

/// The Secret the first site's `tls` volume mounts.
fn tls_secret(objects: &DesiredObjects) -> Option<String> {
    objects.deployments[0]
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == "tls")?
        .secret
        .as_ref()?
        .secret_name
        .clone()
}

#[test]
fn tls_mounts_the_cert_manager_secret() {
    let mut g = group();
    g.spec.tls = Some(TlsSpec {
        issuer_ref: IssuerRef {
            name: "ca".to_owned(),
            ..IssuerRef::default()
        },
        secret_name: Some("orders-mysql-tls".to_owned()),
    });
    let objects = render(&g, &RenderOptions::default()).unwrap();
    assert_eq!(tls_secret(&objects).as_deref(), Some("orders-mysql-tls"));
    assert!(
        objects.config_map.data.as_ref().unwrap()["iad.cnf"]
            .contains("require-secure-transport = ON")
    );
    g.spec.tls.as_mut().unwrap().secret_name = None;
    let objects = render(&g, &RenderOptions::default()).unwrap();
    assert_eq!(tls_secret(&objects).as_deref(), Some("mysql-orders-tls"));
}

#[test]
fn operator_pod_labels_win_and_user_ones_are_kept() {
    let mut g = group();
    g.spec.pod_labels = BTreeMap::from([
        ("team".to_owned(), "orders".to_owned()),
        ("shipstream.io/site".to_owned(), "spoofed".to_owned()),
    ]);
    g.spec.pod_annotations = BTreeMap::from([(
        names::ANNOTATION_CONFIG_CHECKSUM.to_owned(),
        "spoofed".to_owned(),
    )]);
    let objects = render(&g, &RenderOptions::default()).unwrap();
    let meta = objects.deployments[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .clone()
        .unwrap();
    let labels = meta.labels.unwrap();
    assert_eq!(labels["team"], "orders");
    assert_eq!(labels["shipstream.io/site"], "iad");
    assert_ne!(
        meta.annotations.unwrap()[names::ANNOTATION_CONFIG_CHECKSUM],
        "spoofed"
    );
}

#[test]
fn unusable_input_is_refused_with_the_reason() {
    let mut g = group();
    g.metadata.uid = None;
    assert!(matches!(
        render(&g, &RenderOptions::default()),
        Err(RenderError::MissingMetadata("uid"))
    ));
    let mut g = group();
    g.spec.sites[0].name = "IAD".to_owned();
    assert!(matches!(
        render(&g, &RenderOptions::default()),
        Err(RenderError::InvalidName { .. })
    ));
    let mut g = group();
    g.spec.sites[0].name = "a".repeat(50);
    let err = render(&g, &RenderOptions::default()).unwrap_err();
    assert!(err.to_string().contains("63"), "{err}");
}

#[test]
fn dns_endpoint_points_at_the_given_site() {
    let mut g = group();
    g.spec.sites[1].lb_ip = Some("10.0.0.2".to_owned());
    let dns = dns::dns_endpoint(&g, "pdx").unwrap();
    assert_eq!(dns.metadata.name.as_deref(), Some("bloodraven-orders"));
    let v = serde_json::to_value(&dns).unwrap();
    assert_eq!(v["apiVersion"], "externaldns.k8s.io/v1alpha1");
    assert_eq!(v["kind"], "DNSEndpoint");
    assert_eq!(
        v["spec"]["endpoints"][0]["dnsName"],
        "orders-db.example.com"
    );
    assert_eq!(v["spec"]["endpoints"][0]["recordType"], "A");
    assert_eq!(v["spec"]["endpoints"][0]["targets"][0], "10.0.0.2");
    assert_eq!(v["spec"]["endpoints"][0]["recordTTL"], 60);
    assert!(matches!(
        dns::dns_endpoint(&g, "fra"),
        Err(RenderError::UnknownSite(_))
    ));
    g.spec.sites[1].lb_ip = None;
    assert!(matches!(
        dns::dns_endpoint(&g, "pdx"),
        Err(RenderError::NoLbIp(_))
    ));
}

fn pod_of(objects: &DesiredObjects, index: usize) -> k8s_openapi::api::core::v1::PodSpec {
    objects.deployments[index]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .clone()
        .unwrap()
}

/// The pod's sidecar token volume.
fn sidecar_token_volume(pod: &PodSpec) -> SecretVolumeSource {
    pod.volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "sidecar-token")
        .and_then(|v| v.secret.clone())
        .unwrap()
}

/// Parses a rendered sidecar config as the sidecar would. Its password comes from the
/// container's environment, which a unit test cannot set (no `unsafe`): any variable that
/// is always set stands in for it.
fn parse_rendered(
    config: &str,
) -> Result<
    crate::shells::sidecar::config::SidecarConfig,
    crate::shells::standalone::config::ConfigError,
> {
    let needle = format!("passwordEnv: {}", deployment::ROOT_PASSWORD_KEY);
    assert!(config.contains(&needle), "{config}");
    crate::shells::sidecar::config::parse(
        "rendered",
        &config.replace(&needle, "passwordEnv: PATH"),
        std::path::Path::new("/"),
    )
}

/// The test group, opted in to the sidecar.
fn with_sidecar() -> MysqlFailoverGroup {
    let mut g = group();
    g.metadata.annotations = Some(BTreeMap::from([(
        crate::api::annotations::SIDECAR.to_owned(),
        "enabled".to_owned(),
    )]));
    g
}

#[test]
fn the_sidecar_is_rendered_only_for_a_group_that_opts_in() {
    let objects = render(&group(), &RenderOptions::default()).unwrap();
    let pod = pod_of(&objects, 0);
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mysql"]);
    let volumes = pod.volumes.as_ref().unwrap();
    assert!(volumes.iter().all(|v| v.name != "sidecar-token"));
    let mut g = group();
    g.metadata.annotations = Some(BTreeMap::from([(
        crate::api::annotations::SIDECAR.to_owned(),
        "yes please".to_owned(),
    )]));
    let objects = render(&g, &RenderOptions::default()).unwrap();
    assert_eq!(
        pod_of(&objects, 0).containers.len(),
        1,
        "only `enabled` opts in"
    );
}

#[test]
fn the_sidecar_trusts_only_the_operators_ca_mounted_from_the_token_secret() {
    let objects = render(&with_sidecar(), &RenderOptions::default()).unwrap();
    let pod = pod_of(&objects, 0);
    let sidecar = pod.containers.iter().find(|c| c.name == "sidecar").unwrap();
    let config = sidecar
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == deployment::SIDECAR_CONFIG_ENV)
        .and_then(|e| e.value.clone())
        .unwrap();
    let parsed = parse_rendered(&config).unwrap();
    assert!(parsed.operator_url.starts_with("https://"), "{config}");
    assert_eq!(
        parsed.operator_ca_file.as_deref(),
        Some(std::path::Path::new(
            "/var/run/bloodraven/sidecar/operator-ca.crt"
        ))
    );
    let token = sidecar_token_volume(&pod);
    let items: Vec<(&str, &str)> = token
        .items
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| (i.key.as_str(), i.path.as_str()))
        .collect();
    assert_eq!(items, [("token", "token"), ("ca.crt", "operator-ca.crt")]);
}

#[test]
fn every_site_pod_runs_a_restricted_sidecar_with_its_token_and_peers() {
    let mut g = with_sidecar();
    g.spec.secret_name = Some("orders-mysql".to_owned());
    let objects = render(&g, &RenderOptions::default()).unwrap();
    let pod = pod_of(&objects, 0);
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mysql", "sidecar"]);
    let sidecar = &pod.containers[1];
    assert_eq!(
        sidecar.image.as_deref(),
        Some(deployment::DEFAULT_SIDECAR_IMAGE)
    );
    assert_eq!(
        sidecar.security_context, pod.containers[0].security_context,
        "the same Restricted context as mysqld"
    );
    let env = sidecar.env.as_ref().unwrap();
    let config = env
        .iter()
        .find(|e| e.name == deployment::SIDECAR_CONFIG_ENV)
        .and_then(|e| e.value.clone())
        .unwrap();
    // The rendered config is one the sidecar accepts.
    let parsed = parse_rendered(&config);
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{config}"),
    };
    assert_eq!(parsed.site, "iad");
    assert_eq!(parsed.lease_timeout, std::time::Duration::from_secs(20));
    assert_eq!(parsed.peers.len(), 1);
    assert_eq!(
        parsed.peers[0].url,
        "http://mysql-orders-pdx-internal.db.svc:8443"
    );
    assert_eq!(
        parsed.operator_url,
        "https://bloodraven:8082/sidecar/v1/namespaces/db/groups/orders/active-site"
    );
    assert!(parsed.tls.is_none());
    let password = env
        .iter()
        .find(|e| e.name == deployment::ROOT_PASSWORD_KEY)
        .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
        .unwrap();
    assert_eq!(
        password.name, "orders-mysql",
        "the operator Secret, as the init container"
    );
    let token = sidecar_token_volume(&pod);
    assert_eq!(
        token.secret_name.as_deref(),
        Some("mysql-orders-sidecar-token")
    );
    let probe = sidecar
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/health"));
    // Peers reach it through the internal Service.
    let internal = objects
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("mysql-orders-iad-internal"))
        .unwrap();
    let ports: Vec<i32> = internal
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [3306, 8443]);
    let client = objects
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("mysql-orders-iad"))
        .unwrap();
    assert_eq!(
        client.spec.as_ref().unwrap().ports.as_ref().unwrap().len(),
        1,
        "clients never see it"
    );
}

#[test]
fn the_sidecar_calls_the_address_serve_was_given_unless_the_group_names_one() {
    let g = with_sidecar();
    let options = RenderOptions {
        sidecar_operator_address: Some("bloodraven.bloodraven-system.svc:8082".to_owned()),
        ..RenderOptions::default()
    };
    let operator_url = |g: &MysqlFailoverGroup| {
        let objects = render(g, &options).unwrap();
        let config = pod_of(&objects, 0).containers[1].env.as_ref().unwrap()[0]
            .value
            .clone()
            .unwrap();
        parse_rendered(&config).unwrap().operator_url
    };
    assert_eq!(
        operator_url(&g),
        "https://bloodraven.bloodraven-system.svc:8082/sidecar/v1/namespaces/db/groups/orders/active-site"
    );
    let mut named = g.clone();
    named.spec.sidecar = Some(crate::api::failover_group::SidecarSpec {
        lease_timeout: "20s".to_owned(),
        peer_check_interval: "5s".to_owned(),
        bloodraven_address: Some("elsewhere:9000".to_owned()),
    });
    assert!(operator_url(&named).starts_with("https://elsewhere:9000/sidecar/v1/"));
}

#[test]
fn sidecar_settings_image_resources_and_tls_come_from_the_spec() {
    let mut g = with_sidecar();
    g.spec.sidecar_image = Some("registry.example.com/bloodraven:1.2.3".to_owned());
    g.spec.sidecar = Some(crate::api::failover_group::SidecarSpec {
        lease_timeout: "30s".to_owned(),
        peer_check_interval: "2s".to_owned(),
        bloodraven_address: Some("bloodraven.ops.svc:8082".to_owned()),
    });
    g.spec.sidecar_resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("64Mi".to_owned()),
        )])),
        ..Default::default()
    });
    g.spec.tls = Some(TlsSpec {
        issuer_ref: IssuerRef {
            name: "ca".to_owned(),
            ..IssuerRef::default()
        },
        secret_name: None,
    });
    let objects = render(&g, &RenderOptions::default()).unwrap();
    let pod = pod_of(&objects, 1);
    let sidecar = &pod.containers[1];
    assert_eq!(
        sidecar.image.as_deref(),
        Some("registry.example.com/bloodraven:1.2.3")
    );
    assert_eq!(sidecar.resources, g.spec.sidecar_resources);
    let config = sidecar.env.as_ref().unwrap()[0].value.clone().unwrap();
    let parsed = parse_rendered(&config).unwrap();
    assert_eq!(parsed.site, "pdx");
    assert_eq!(parsed.lease_timeout, std::time::Duration::from_secs(30));
    assert_eq!(
        parsed.peer_check_interval,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        parsed.peers[0].url,
        "https://mysql-orders-iad-internal.db.svc:8443"
    );
    assert_eq!(
        parsed.operator_url,
        "https://bloodraven.ops.svc:8082/sidecar/v1/namespaces/db/groups/orders/active-site"
    );
    let tls = parsed.tls.unwrap();
    assert_eq!(
        tls.client_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/bloodraven/sidecar-tls/ca.crt"))
    );
    let mounts: Vec<&str> = sidecar
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(mounts, ["sidecar-token", "tls"]);
    assert_eq!(
        sidecar
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .scheme
            .as_deref(),
        Some("HTTPS")
    );
}
