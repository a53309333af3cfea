//! `charts/bloodraven`, checked with the real tools (installed by
//! `scripts/install-test-deps.sh`; a missing tool fails the test, naming that script):
//! - `helm lint --strict` and `helm template` with the default values and every
//!   `charts/bloodraven/ci/*.yaml`; two renders are byte-identical;
//! - every render through `kubernetes-validate` (the 1.36 schemas) and `bloodraven lint`
//!   (zero required findings);
//! - the RBAC equals `webhook/rbac.yaml`'s, cluster-wide and namespace-scoped (that file's
//!   operator role is checked against the requests the binary sends by kube_real_operator);
//! - `webhook/` is what `scripts/webhook-manifests.sh` renders from the chart;
//! - the chart's CRDs are the top-level ones, byte for byte;
//! - the README's values table is the schema's (`BLOODRAVEN_BLESS=1` rewrites it);
//! - the alerts pass `promtool check rules` and `promtool test rules`, every alert has a
//!   unit test and a runbook, and the alerts and the dashboard name only metrics the binary
//!   exports;
//! - the `Containerfile` passes `hadolint`.

use crate::support::tools::{dep_tool, output_text};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const RELEASE: &str = "bloodraven";
const NAMESPACE: &str = "bloodraven-system";
const K8S_VERSION: &str = "1.36.0";
const CI_FILES: [&str; 5] = [
    "cert-manager-values.yaml",
    "manual-ca-values.yaml",
    "monitoring-off-values.yaml",
    "namespace-scoped-values.yaml",
    "self-managed-values.yaml",
];
const RUNBOOKS_URL: &str = "https://github.com/shipstream/bloodraven/blob/main/docs/runbooks.md#";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/bloodraven")
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the tool runs")
}

/// The value sets CI covers: the defaults, then every file under `ci/`.
fn value_sets() -> Vec<(String, Option<PathBuf>)> {
    let mut files: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .expect("charts/bloodraven/ci")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, CI_FILES, "the CI value files");
    std::iter::once(("defaults".to_owned(), None))
        .chain(
            files
                .into_iter()
                .map(|f| (f.clone(), Some(chart().join("ci").join(f)))),
        )
        .collect()
}

fn helm_template(values: Option<&Path>, extra: &[&str]) -> Output {
    let mut command = Command::new(dep_tool("helm"));
    command
        .args(["template", RELEASE])
        .arg(chart())
        .args(["--namespace", NAMESPACE]);
    if let Some(values) = values {
        command.arg("--values").arg(values);
    }
    run(command.args(extra))
}

fn render(name: &str, values: Option<&Path>) -> String {
    let out = helm_template(values, &[]);
    assert!(
        out.status.success(),
        "helm template ({name}):\n{}",
        output_text(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn documents(name: &str, yaml: &str) -> Vec<Value> {
    let stream = bloodraven::policy::manifest::parse_stream(Some(name), yaml);
    assert!(stream.errors.is_empty(), "{name}: {:?}", stream.errors);
    stream.documents.into_iter().map(|d| d.value).collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().expect("kind").to_owned())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

type Grant = (String, String, String);

/// (API group, resource, verb) of a list of RBAC rules.
fn grants(rules: &Value) -> BTreeSet<Grant> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

#[test]
fn crds_are_byte_identical_to_the_top_level_crds() {
    let list = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .expect("crds dir")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("crd"),
                )
            })
            .collect()
    };
    let top = list(&root().join("crds"));
    let chart = list(&chart().join("crds"));
    assert_eq!(top.len(), 3, "{:?}", top.keys());
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &top {
        assert!(
            chart[name] == *bytes,
            "charts/bloodraven/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/bloodraven/crds/"
        );
    }
}

#[test]
fn helm_lint_strict_passes_for_the_defaults_and_every_ci_file() {
    for (name, values) in value_sets() {
        let mut command = Command::new(dep_tool("helm"));
        command.args(["lint", "--strict"]).arg(chart());
        if let Some(values) = &values {
            command.arg("--values").arg(values);
        }
        let out = run(&mut command);
        assert!(
            out.status.success(),
            "helm lint ({name}):\n{}",
            output_text(&out)
        );
        assert!(
            output_text(&out).contains("1 chart(s) linted, 0 chart(s) failed"),
            "{name}: {}",
            output_text(&out)
        );
    }
}

#[test]
fn renders_are_byte_identical() {
    for (name, values) in value_sets() {
        let first = render(&name, values.as_deref());
        let second = render(&name, values.as_deref());
        assert!(first.contains("kind: Deployment"), "{name}");
        assert!(first == second, "{name}: two renders differ");
    }
}

#[test]
fn the_ci_files_cover_what_their_names_say() {
    let rendered: BTreeMap<String, BTreeSet<String>> = value_sets()
        .into_iter()
        .map(|(name, values)| {
            let objects = documents(&name, &render(&name, values.as_deref()));
            (name, kinds(&objects))
        })
        .collect();
    let has = |set: &str, kind: &str| rendered[set].contains(kind);
    for kind in [
        "Certificate",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    ] {
        assert!(has("cert-manager-values.yaml", kind), "{kind}");
        assert!(has("defaults", kind), "{kind}");
    }
    for set in ["self-managed-values.yaml", "manual-ca-values.yaml"] {
        assert!(!has(set, "Certificate"), "{set}");
        assert!(!has(set, "Issuer"), "{set}");
    }
    // The binary fills the Secret the chart creates; by hand, you create it.
    assert!(has("self-managed-values.yaml", "Secret"));
    assert!(!has("manual-ca-values.yaml", "Secret"));
    for kind in ["ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(!has("monitoring-off-values.yaml", kind), "{kind}");
    }
    assert!(has("namespace-scoped-values.yaml", "Role"));
    assert!(!has("defaults", "Role"));
    for set in rendered.values() {
        for kind in [
            "Deployment",
            "ServiceAccount",
            "Service",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ClusterRole",
        ] {
            assert!(set.contains(kind), "{kind} in every render");
        }
    }
}

/// Custom kinds kubernetes-validate has no schema for; everything else must validate.
fn has_upstream_schema(object: &Value) -> bool {
    let api = object["apiVersion"].as_str().expect("apiVersion");
    !(api.starts_with("cert-manager.io/") || api.starts_with("monitoring.coreos.com/"))
}

#[test]
fn renders_pass_kubernetes_validate() {
    let validator = dep_tool("kubernetes-validate");
    for (name, values) in value_sets() {
        let objects = documents(&name, &render(&name, values.as_deref()));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (i, object) in objects
            .iter()
            .filter(|o| has_upstream_schema(o))
            .enumerate()
        {
            // One object per file, so a failure names the object.
            let file = dir.path().join(format!(
                "{i:02}-{}-{}.json",
                object["kind"].as_str().expect("kind"),
                object["metadata"]["name"].as_str().expect("name")
            ));
            std::fs::write(&file, serde_json::to_vec(object).expect("json")).expect("write");
            files.push(file);
        }
        assert!(files.len() >= 12, "{name}: {} objects", files.len());
        let out = run(Command::new(&validator)
            .args(["--strict", "--kubernetes-version", K8S_VERSION])
            .args(&files));
        assert!(
            out.status.success(),
            "{name}: kubernetes-validate {K8S_VERSION}:\n{}",
            output_text(&out)
        );
        assert!(
            !output_text(&out).to_lowercase().contains("error"),
            "{name}:\n{}",
            output_text(&out)
        );
    }
}

fn bloodraven_lint(name: &str, manifests: &str) -> (Output, Value) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bloodraven"))
        .args(["lint", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bloodraven lint");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifests.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("bloodraven lint");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: lint report: {e}\n{}", output_text(&out)));
    (out, report)
}

#[test]
fn renders_have_no_required_lint_findings() {
    for (name, values) in value_sets() {
        let rendered = render(&name, values.as_deref());
        let (out, report) = bloodraven_lint(&name, &rendered);
        let required: Vec<&Value> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["level"] == "required")
            .collect();
        assert!(required.is_empty(), "{name}: {required:#?}");
        assert_eq!(out.status.code(), Some(0), "{name}:\n{}", output_text(&out));
        // The checklist does look at the chart's Deployment: an unpinned image is found.
        let unpinned = rendered.replace(
            "ghcr.io/shipstream/bloodraven@sha256:",
            "ghcr.io/shipstream/bloodraven:latest#",
        );
        let (out, report) = bloodraven_lint(&name, &unpinned);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", output_text(&out));
        assert!(
            report["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .any(|f| f["ruleId"] == "BR-WL-001"),
            "{name}: {report:#}"
        );
    }
}

#[test]
fn unknown_or_invalid_values_are_rejected() {
    for (set, why) in [
        ("bogus=1", "Additional property bogus is not allowed"),
        ("image.tag=v1", "Additional property tag is not allowed"),
        (
            "resources.requests.gpu=1",
            "Additional property gpu is not allowed",
        ),
        ("image.digest=sha256:abc", "image.digest"),
        ("controllers=maybe", "controllers"),
        ("certManager.enabled=false", "tls.caBundle"),
        ("tls.selfManaged.enabled=true", "certManager.enabled"),
        (
            "tls.selfManaged.servingValidity=90d",
            "tls.selfManaged.servingValidity",
        ),
    ] {
        let out = helm_template(None, &["--set", set]);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            output_text(&out).contains(why),
            "--set {set}:\n{}",
            output_text(&out)
        );
    }
}

/// The cluster-wide install grants exactly webhook/rbac.yaml's roles; the namespace-scoped
/// one grants the same, split into Roles per watched namespace (and the Lease's namespace)
/// and ClusterRoles for the cluster-scoped kinds only.
#[test]
fn rbac_equals_webhook_rbac_in_both_scopes() {
    let reference = documents("webhook/rbac.yaml", &read("webhook/rbac.yaml"));
    let role = |name: &str| grants(&find(&reference, "ClusterRole", name)["rules"]);
    let operator = role("bloodraven-operator");
    let lookups = role("bloodraven-lookups");
    let storage = role("bloodraven-storageclasses");
    assert!(operator.len() > 20 && lookups.len() == 12 && storage.len() == 3);
    let cluster_scoped = |g: &Grant| g.1 == "nodes" || g.1 == "storageclasses";

    for (name, values) in value_sets() {
        let mut objects = documents(&name, &render(&name, values.as_deref()));
        let certs = self_managed_cert_roles(&name, &mut objects);
        assert_eq!(certs, name.starts_with("self-managed"), "{name}");
        // Every binding names the one ServiceAccount and a role in this render.
        for binding in objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
        {
            assert_eq!(
                binding["subjects"],
                json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
            );
            // A RoleBinding's Role is the one of that name in the binding's namespace.
            let role_ref = &binding["roleRef"];
            let bound = objects.iter().filter(|o| {
                o["kind"] == role_ref["kind"]
                    && o["metadata"]["name"] == role_ref["name"]
                    && o["metadata"]["namespace"] == binding["metadata"]["namespace"]
            });
            assert_eq!(bound.count(), 1, "{name}: {role_ref} of {binding}");
        }
        let namespaces: Vec<String> = values
            .as_deref()
            .map(|v| documents("values", &std::fs::read_to_string(v).expect("values")))
            .and_then(|d| d[0]["watchNamespaces"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str().expect("namespace").to_owned())
            .collect();
        let cluster_roles: BTreeSet<Grant> = objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRole")
            .flat_map(|o| grants(&o["rules"]))
            .collect();
        if namespaces.is_empty() {
            assert_eq!(
                grants(&find(&objects, "ClusterRole", "bloodraven-operator")["rules"]),
                operator,
                "{name}"
            );
            assert_eq!(
                grants(&find(&objects, "ClusterRole", "bloodraven-lookups")["rules"]),
                lookups,
                "{name}"
            );
            assert_eq!(
                grants(&find(&objects, "ClusterRole", "bloodraven-storageclasses")["rules"]),
                storage,
                "{name}"
            );
            assert!(!kinds(&objects).contains("Role"), "{name}");
            continue;
        }
        // Namespace-scoped: nothing namespaced is granted cluster-wide (no cluster-wide
        // Secret access above all).
        assert!(
            cluster_roles.iter().all(cluster_scoped),
            "{name}: {cluster_roles:?}"
        );
        let roles_in = |ns: &str| -> BTreeSet<Grant> {
            objects
                .iter()
                .filter(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == ns)
                .flat_map(|o| grants(&o["rules"]))
                .collect()
        };
        let leases = roles_in(NAMESPACE);
        assert!(
            leases.iter().all(|g| g.1 == "leases"),
            "{name}: the release namespace only holds the Lease: {leases:?}"
        );
        for ns in &namespaces {
            let watched = roles_in(ns);
            let mut all: BTreeSet<Grant> = watched.clone();
            all.extend(cluster_roles.iter().cloned());
            all.extend(leases.iter().cloned());
            let expected: BTreeSet<Grant> = operator.union(&lookups).cloned().collect();
            let expected: BTreeSet<Grant> = expected.union(&storage).cloned().collect();
            assert_eq!(all, expected, "{name}: namespace {ns}");
        }
    }
}

/// `serve --self-managed-certs` gets exactly what `adapters/kube/webhook_certs.rs` calls:
/// GET and a resourceVersion-conditional PUT of its one Secret (the chart creates it), GET
/// and a JSON PATCH of the two webhook configurations; each by name. Checks those roles
/// and their bindings when the render has them and takes them out of `objects`, so the
/// other roles compare with webhook/rbac.yaml as before. Returns whether they were there.
fn self_managed_cert_roles(name: &str, objects: &mut Vec<Value>) -> bool {
    let named = |o: &Value, kind: &str, n: &str| o["kind"] == kind && o["metadata"]["name"] == n;
    let Some(role) = objects
        .iter()
        .find(|o| named(o, "Role", "bloodraven-certs"))
        .cloned()
    else {
        return false;
    };
    assert_eq!(role["metadata"]["namespace"], NAMESPACE, "{name}");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"],
                "resourceNames": ["bloodraven-webhook-tls"], "verbs": ["get", "update"]}]),
        "{name}"
    );
    let cluster_role = find(objects, "ClusterRole", "bloodraven-webhook-configurations");
    assert_eq!(
        cluster_role["rules"],
        json!([{"apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
                "resourceNames": [RELEASE], "verbs": ["get", "patch"]}]),
        "{name}"
    );
    let before = objects.len();
    objects.retain(|o| {
        !(named(o, "Role", "bloodraven-certs")
            || named(o, "RoleBinding", "bloodraven-certs")
            || named(o, "ClusterRole", "bloodraven-webhook-configurations")
            || named(o, "ClusterRoleBinding", "bloodraven-webhook-configurations"))
    });
    assert_eq!(before - objects.len(), 4, "{name}: two roles, two bindings");
    true
}

#[test]
fn webhook_dir_is_generated_from_the_chart() {
    dep_tool("helm");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(root().join("scripts/webhook-manifests.sh")).arg(dir.path()));
    assert!(out.status.success(), "{}", output_text(&out));
    for file in [
        "rbac.yaml",
        "service.yaml",
        "validating.yaml",
        "mutating.yaml",
    ] {
        let generated = std::fs::read_to_string(dir.path().join(file)).expect("generated");
        assert!(
            generated == read(&format!("webhook/{file}")),
            "webhook/{file} is not what the chart renders: run scripts/webhook-manifests.sh"
        );
    }
}

/// The webhooks keep the admission contract in every render, and their CA comes from the
/// certificate source the values choose.
#[test]
fn webhooks_follow_the_contract_in_every_render() {
    for (name, values) in value_sets() {
        let objects = documents(&name, &render(&name, values.as_deref()));
        // By the binary (no caBundle rendered: it writes them), by hand (the given CA), or
        // by cert-manager's injector (empty, filled later).
        let self_managed = name.starts_with("self-managed");
        let manual = name.starts_with("manual-ca");
        for (kind, policy, count) in [
            ("ValidatingWebhookConfiguration", "Fail", 2),
            ("MutatingWebhookConfiguration", "Ignore", 1),
        ] {
            let config = find(&objects, kind, RELEASE);
            let hooks = config["webhooks"].as_array().expect("webhooks");
            assert_eq!(hooks.len(), count, "{name} {kind}");
            for hook in hooks {
                assert_eq!(hook["failurePolicy"], policy, "{name}");
                assert_eq!(hook["sideEffects"], "None", "{name}");
                assert_eq!(hook["timeoutSeconds"], 5, "{name}");
                assert_eq!(
                    hook["namespaceSelector"]["matchExpressions"][0]["values"],
                    json!([NAMESPACE])
                );
                let service = &hook["clientConfig"]["service"];
                find(&objects, "Service", service["name"].as_str().expect("name"));
                for rule in hook["rules"].as_array().expect("rules") {
                    assert_eq!(rule["apiGroups"], json!(["shipstream.io"]), "{name}");
                }
                let ca = &hook["clientConfig"]["caBundle"];
                if self_managed {
                    assert!(ca.is_null(), "{name}: the binary writes caBundle, not Helm");
                } else {
                    assert_eq!(ca.as_str().expect("caBundle").is_empty(), !manual, "{name}");
                }
            }
            let inject = &config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
            if self_managed || manual {
                assert!(inject.is_null(), "{name}");
            } else {
                let (ns, certificate) = inject
                    .as_str()
                    .expect("inject-ca-from")
                    .split_once('/')
                    .expect("ns/name");
                assert_eq!(ns, NAMESPACE);
                let certificate = find(&objects, "Certificate", certificate);
                let deployment = find(&objects, "Deployment", RELEASE);
                assert_eq!(
                    certificate["spec"]["secretName"],
                    deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
                    "{name}: the pod mounts what cert-manager writes"
                );
                assert_eq!(
                    certificate["spec"]["dnsNames"][0],
                    format!("{RELEASE}-webhook.{NAMESPACE}.svc")
                );
            }
        }
    }
}

/// The Deployment: Restricted pod security, pinned image, two replicas, probes on routes
/// the server has, and only flags `bloodraven serve` accepts.
#[test]
fn deployment_is_restricted_pinned_and_uses_real_flags() {
    let help = run(Command::new(env!("CARGO_BIN_EXE_bloodraven")).args(["serve", "--help"]));
    assert!(help.status.success(), "{}", output_text(&help));
    let help = output_text(&help);
    for (name, values) in value_sets() {
        let objects = documents(&name, &render(&name, values.as_deref()));
        let deployment = find(&objects, "Deployment", RELEASE);
        assert_eq!(deployment["spec"]["replicas"], 2, "{name}");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(
            pod["topologySpreadConstraints"].as_array().map(Vec::len),
            Some(2)
        );
        let container = &pod["containers"][0];
        let image = container["image"].as_str().expect("image");
        let digest = image.split_once("@sha256:").expect("pinned by digest").1;
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{image}"
        );
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        let args = container["args"].as_array().expect("args");
        assert_eq!(args[0], "serve");
        for arg in &args[1..] {
            let flag = arg.as_str().expect("arg").split('=').next().expect("flag");
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{name}: `bloodraven serve` has no {flag}"
            );
        }
        // The binary keeps the certificate in a writable in-memory directory, or the pod
        // mounts the Secret read-only.
        let self_managed = args.iter().any(|a| a == "--self-managed-certs");
        assert_eq!(self_managed, name.starts_with("self-managed"), "{name}");
        let tls = &pod["volumes"][0];
        assert_eq!(tls["name"], "tls");
        assert_eq!(tls["emptyDir"].is_object(), self_managed, "{name}");
        assert_eq!(tls["secret"].is_object(), !self_managed, "{name}");
        if self_managed {
            for flag in [
                "--cert-secret=bloodraven-webhook-tls",
                "--cert-dns=bloodraven-webhook.bloodraven-system.svc",
                "--validating-webhook=bloodraven",
                "--mutating-webhook=bloodraven",
            ] {
                assert!(args.iter().any(|a| a == flag), "{name}: {flag}");
            }
        }
        let account =
            format!("--operator-service-account=system:serviceaccount:{NAMESPACE}:{RELEASE}");
        assert!(args.iter().any(|a| a == account.as_str()), "{name}");
        assert_eq!(
            account.split_once('=').expect("=").1,
            bloodraven::shells::serve::DEFAULT_OPERATOR_SERVICE_ACCOUNT
        );
        let pdb = find(&objects, "PodDisruptionBudget", RELEASE);
        assert_eq!(pdb["spec"]["minAvailable"], 1);
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"],
            deployment["spec"]["selector"]["matchLabels"]
        );
    }
}

// --- the values table

const TABLE_START: &str = "<!-- values-table: generated from values.schema.json by tests/it/chart.rs (scripts/chart-readme.sh) -->";
const TABLE_END: &str = "<!-- /values-table -->";

/// Appends a row per leaf of `schema` under `prefix`.
fn walk(prefix: &str, schema: &Value, defaults: &Value, rows: &mut Vec<String>) {
    let properties = schema["properties"].as_object();
    match properties {
        Some(properties) if schema["additionalProperties"] == false => {
            for (key, sub) in properties {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(&path, sub, &defaults[key], rows);
            }
        }
        _ => {
            let kind = match &schema["type"] {
                Value::Array(types) => types
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" or "),
                other => other.as_str().unwrap_or("any").to_owned(),
            };
            let default = match defaults {
                Value::Null => String::new(),
                other => format!("`{other}`"),
            };
            let description = schema["description"].as_str().unwrap_or_default();
            rows.push(format!(
                "| `{prefix}` | {kind} | {} | {} |",
                default.replace('|', "\\|"),
                description.replace('|', "\\|")
            ));
        }
    }
}

/// One row per leaf of the schema: key, type, default (from values.yaml), description.
fn values_table() -> String {
    let schema: Value =
        serde_json::from_str(&read("charts/bloodraven/values.schema.json")).expect("schema");
    let defaults = documents("values.yaml", &read("charts/bloodraven/values.yaml")).remove(0);
    let mut rows = Vec::new();
    walk("", &schema, &defaults, &mut rows);
    format!(
        "{TABLE_START}\n| Key | Type | Default | Description |\n|---|---|---|---|\n{}\n{TABLE_END}",
        rows.join("\n")
    )
}

#[test]
fn readme_values_table_is_the_schema() {
    let path = chart().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("charts/bloodraven/README.md");
    let start = readme.find(TABLE_START).expect("the table's start marker");
    let end = readme.find(TABLE_END).expect("the table's end marker") + TABLE_END.len();
    let table = values_table();
    if std::env::var_os("BLOODRAVEN_BLESS").is_some() {
        let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert!(
        readme[start..end] == table,
        "charts/bloodraven/README.md's values table is stale: run scripts/chart-readme.sh"
    );
    assert!(table.contains("| `image.digest` | string |"), "{table}");
}

// --- alerts, runbooks, dashboard

fn alerts() -> Vec<Value> {
    let file = documents("alerts.yaml", &read("charts/bloodraven/files/alerts.yaml")).remove(0);
    file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

#[test]
fn alerts_pass_promtool_check_and_unit_tests() {
    let promtool = dep_tool("promtool");
    let out = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(chart().join("files/alerts.yaml")));
    assert!(out.status.success(), "{}", output_text(&out));
    let count = alerts().len();
    assert!(
        output_text(&out).contains(&format!("SUCCESS: {count} rules found")),
        "{}",
        output_text(&out)
    );

    let out = run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(root().join("tests/alerts/alerts_test.yaml")));
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("SUCCESS"),
        "{}",
        output_text(&out)
    );

    // Each alert is shown quiet and firing.
    let tests = documents("alerts_test.yaml", &read("tests/alerts/alerts_test.yaml")).remove(0);
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().expect("cases"))
        .collect();
    for alert in alerts() {
        let name = alert["alert"].as_str().expect("alert");
        let of_alert = || cases.iter().filter(|c| c["alertname"] == name);
        let firing = |c: &&&Value| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
        assert!(of_alert().any(|c| firing(&c)), "{name}: no firing case");
        assert!(of_alert().any(|c| !firing(&c)), "{name}: no quiet case");
    }
}

#[test]
fn every_alert_links_its_runbook() {
    let runbooks = read("docs/runbooks.md");
    let sections: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::to_owned)
        .collect();
    let mut named = BTreeSet::new();
    for alert in alerts() {
        let name = alert["alert"].as_str().expect("alert").to_owned();
        let url = alert["annotations"]["runbook_url"]
            .as_str()
            .expect("runbook_url");
        assert_eq!(
            url,
            format!("{RUNBOOKS_URL}{}", name.to_lowercase()),
            "{name}: the anchor of its section"
        );
        assert!(
            sections.contains(&name),
            "docs/runbooks.md has no `## {name}`"
        );
        assert!(
            alert["labels"]["severity"].as_str().is_some(),
            "{name}: severity"
        );
        named.insert(name);
    }
    assert_eq!(sections, named, "a runbook section per alert, and no other");
}

/// Metric names the binary exports: the exposition `/metrics` serves, once every family
/// has a series (a family without one is not exposed). The server's families are fed the
/// way its handlers feed them, one group's failover families the way the failover loop
/// does (status, events, a promotion, a planned switchover, a poll, a taint, a DNS flip), and
/// its backup families (runs that succeeded and failed). Prometheus text:
/// counters end in `_total`, histograms are `_bucket`, `_sum` and `_count`.
fn exported_metrics() -> BTreeSet<String> {
    use bloodraven::error::Category;
    use bloodraven::failover::Timestamp;
    use bloodraven::failover::{
        EngineState, Event, EventReason, GroupPolicy, GroupStatus, PlannedPhase, SiteState,
        SiteTransition,
    };
    use bloodraven::policy::rules::{BundleContext, Catalog, LintConfig, Linter};
    use bloodraven::shells::serve::metrics::{Decision, FindingSource, ServeMetrics};
    use bloodraven::telemetry::backup::RunKind;
    use std::time::Duration;

    let metrics = ServeMetrics::new();
    metrics.observe_request("/validate", 200, Duration::from_millis(1));
    metrics.observe_decision("validate", "CREATE", Decision::Denied);
    metrics.observe_cert_reload(false);
    let bad = read("docs/examples/bad.yaml");
    let stream = bloodraven::policy::manifest::parse_stream(Some("bad.yaml"), &bad);
    let linter = Linter::new(Catalog::builtin().expect("catalog"), LintConfig::default());
    let report = linter.lint(
        &stream.documents,
        Vec::new(),
        &BundleContext::of_documents(&stream.documents),
    );
    assert!(!report.findings.is_empty(), "bad.yaml has findings");
    metrics.observe_findings(FindingSource::Admission, &report.findings);

    let group = metrics.group_failover("ns", "group");
    let status: GroupStatus = serde_json::from_value(json!({
        "activeSite": "iad",
        "sites": [{
            "name": "iad", "role": "primary-candidate", "state": "writable",
            "lastSeen": null, "readOnly": false, "gtidExecuted": null, "replicating": false,
            "secondsBehindSource": null, "sourceHost": null, "divergentGtid": null,
            "divergentTransactionCount": 0, "recoveryState": "", "sourceConvergence": null
        }],
        "lastFailover": null, "plannedFailover": null, "conditions": []
    }))
    .expect("a GroupStatus");
    group.record_status(&status, &EngineState::default(), &GroupPolicy::default());
    let mut changed = Event::new(EventReason::SiteStateChanged, Some("iad"), "");
    changed.transition = Some(SiteTransition {
        from: SiteState::ReadOnly,
        to: SiteState::Writable,
    });
    group.record_events(&[
        changed,
        Event::new(EventReason::SplitBrainResolved, Some("iad"), ""),
        Event::new(EventReason::RecloneRequested, Some("pdx"), ""),
    ]);
    group.failover("iad");
    group.planned_finished(
        "iad",
        PlannedPhase::Succeeded,
        false,
        Duration::from_secs(1),
    );
    group.observe_poll("iad", Duration::from_millis(2));
    group.taint_operation("iad", true);
    group.dns_flip("iad");
    // One group's backup families, as the operator's backup reconcilers feed them: a
    // backup and an archive pass that succeeded, a backup that failed.
    let backups = metrics.group_backups("ns", "group");
    backups.succeeded(
        RunKind::Backup,
        "nightly",
        Timestamp::from_millis(1_764_689_400_000),
        Duration::from_secs(60),
        1024,
    );
    backups.succeeded(
        RunKind::BinlogArchive,
        "nightly",
        Timestamp::from_millis(1_764_689_460_000),
        Duration::from_secs(1),
        512,
    );
    backups.failed(RunKind::Backup, "nightly", Category::Unavailable);

    let exposition = metrics.encode_prometheus_text().expect("encode");
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("name and type");
        names.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("bloodraven_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn alerts_and_dashboard_name_only_exported_metrics() {
    let exported = exported_metrics();
    for must in [
        "bloodraven_failovers_total",
        "bloodraven_site_state",
        "bloodraven_replication_running",
        "bloodraven_split_brain_auto_resolve_total",
        "bloodraven_findings_total",
        "bloodraven_http_request_duration_seconds_bucket",
        "bloodraven_backup_last_success_timestamp_seconds",
        "bloodraven_backup_runs_total",
    ] {
        assert!(exported.contains(must), "{must} in {exported:?}");
    }
    for file in [
        "charts/bloodraven/files/alerts.yaml",
        "charts/bloodraven/files/dashboard.json",
    ] {
        let named = metric_names(&read(file));
        assert!(named.len() >= 6, "{file}: {named:?}");
        let unknown: Vec<&String> = named.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the binary does not export: {unknown:?}"
        );
    }
}

#[test]
fn monitoring_objects_carry_the_files_verbatim() {
    let (name, values) = value_sets()
        .into_iter()
        .find(|(n, _)| n.starts_with("cert-manager"))
        .expect("cert-manager-values.yaml");
    let objects = documents(&name, &render(&name, values.as_deref()));
    let rule = find(&objects, "PrometheusRule", RELEASE);
    let file = documents("alerts.yaml", &read("charts/bloodraven/files/alerts.yaml")).remove(0);
    assert_eq!(rule["spec"], file);
    let dashboard = find(&objects, "ConfigMap", "bloodraven-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value =
        serde_json::from_str(dashboard["data"]["bloodraven.json"].as_str().expect("data"))
            .expect("dashboard JSON");
    let file: Value =
        serde_json::from_str(&read("charts/bloodraven/files/dashboard.json")).expect("file");
    assert_eq!(json, file);
    assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 6));
    let monitor = find(&objects, "ServiceMonitor", RELEASE);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "https");
}

#[test]
fn containerfile_passes_hadolint() {
    let out = run(Command::new(dep_tool("hadolint"))
        .args(["--failure-threshold", "info"])
        .arg(root().join("Containerfile")));
    assert!(out.status.success(), "hadolint:\n{}", output_text(&out));
    let containerfile = read("Containerfile");
    let last_stage = containerfile
        .rsplit("\nFROM ")
        .next()
        .expect("a final stage");
    assert!(last_stage.contains("USER 65532:65532"), "{last_stage}");
    assert!(
        last_stage.starts_with("gcr.io/distroless/static"),
        "{last_stage}"
    );
}

/// The operator may reach the sites' sidecars, on the port the operator renders them with
/// (it asks a site's sidecar when it cannot probe the site's MySQL), and the binary-log
/// archivers on volumes, on the port their status endpoint is rendered with.
#[test]
fn network_policy_lets_the_operator_reach_the_sidecars() {
    let objects = documents("defaults", &render("defaults", None));
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy")
        .expect("a NetworkPolicy");
    let port = i64::from(bloodraven::render::deployment::SIDECAR_PORT);
    let egress_ports: Vec<i64> = policy["spec"]["egress"]
        .as_array()
        .expect("egress rules")
        .iter()
        .flat_map(|rule| rule["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert!(egress_ports.contains(&port), "{egress_ports:?}");
    let archiver = i64::from(bloodraven::render::pitr::ARCHIVER_STATUS_PORT);
    assert!(egress_ports.contains(&archiver), "{egress_ports:?}");
}
