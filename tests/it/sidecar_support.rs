//! Shared pieces of the sidecar tests: a throw-away PKI, a stand-in operator (and peer)
//! endpoint, the sidecar as a child process, and network namespaces for partitions.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

pub const TOKEN: &str = "sidecar-test-token-0123456789";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap())
        .unwrap()
}

/// A CA that signs certificates usable both to serve and as a client identity.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        Self {
            ca: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Writes `tls.crt` and `tls.key` for `sans` into `dir`.
    pub fn issue(&self, dir: &Path, sans: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, sans[0]);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    }

    /// A client identity PEM (certificate then key) for reqwest.
    pub fn client_identity(&self, dir: &Path) -> reqwest::Identity {
        self.issue(dir, &["client.test"]);
        let mut pem = std::fs::read(dir.join("tls.crt")).unwrap();
        pem.extend(std::fs::read(dir.join("tls.key")).unwrap());
        reqwest::Identity::from_pem(&pem).unwrap()
    }
}

/// What the stand-in operator answers; peers' answers too when it plays a peer.
#[derive(Debug, Default)]
pub struct Answers {
    pub active_site: Option<String>,
    pub requests: u64,
}

/// A stand-in for the operator's active-site endpoint (and, on `/peer/active-site`, a peer
/// relaying it), on a real socket.
pub struct FakeOperator {
    pub addr: SocketAddr,
    pub answers: Arc<Mutex<Answers>>,
    task: tokio::task::JoinHandle<()>,
}

async fn op_active(State(a): State<Arc<Mutex<Answers>>>) -> Response {
    let mut a = a.lock().unwrap();
    a.requests += 1;
    axum::Json(serde_json::json!({"activeSite": a.active_site})).into_response()
}

async fn peer_active(
    State(a): State<Arc<Mutex<Answers>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {TOKEN}") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let a = a.lock().unwrap();
    axum::Json(serde_json::json!({"activeSite": a.active_site, "observedAt": now_ms()}))
        .into_response()
}

impl FakeOperator {
    pub async fn start(bind: SocketAddr, active: Option<&str>) -> Self {
        let answers = Arc::new(Mutex::new(Answers {
            active_site: active.map(str::to_owned),
            requests: 0,
        }));
        let app = Router::new()
            .route("/active-site", get(op_active))
            .route("/peer/active-site", get(peer_active))
            .with_state(Arc::clone(&answers));
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            answers,
            task,
        }
    }

    pub fn set_active(&self, site: Option<&str>) {
        self.answers.lock().unwrap().active_site = site.map(str::to_owned);
    }

    pub fn url(&self) -> String {
        format!("http://{}/active-site", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bloodraven"))
}

/// A running `bloodraven sidecar`, killed on drop. Its log goes to `log`.
pub struct SidecarProcess {
    child: Child,
    pub log: PathBuf,
}

impl SidecarProcess {
    pub fn spawn(config: &Path, netns: Option<&str>, log: &Path) -> Self {
        let mut command = match netns {
            None => Command::new(bin()),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin());
                c
            }
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = command
            .args(["sidecar", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            log: log.to_owned(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a sidecar config and returns its path.
#[allow(clippy::too_many_arguments)]
pub fn write_config(
    dir: &Path,
    site: &str,
    mysql: &str,
    operator_url: &str,
    peers: &[(&str, String)],
    listen: &str,
    tls: bool,
    timing: (&str, &str),
) -> PathBuf {
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let mut text = format!(
        "site: {site}\nmysql: {{address: \"{mysql}\", credentials: {{user: root}}}}\noperator: {{url: \"{operator_url}\"}}\nleaseTimeout: {}\npeerCheckInterval: {}\nlisten: \"{listen}\"\nauth: {{tokenFile: token}}\n",
        timing.0, timing.1
    );
    if !peers.is_empty() {
        text.push_str("peers:\n");
        for (name, url) in peers {
            let _ = writeln!(text, "  - {{name: {name}, url: \"{url}\"}}");
        }
    }
    if tls {
        text.push_str("tls: {certDir: tls, clientCaFile: ca.crt}\n");
    }
    let path = dir.join("sidecar.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails loudly, with the fix, when this machine cannot make network namespaces.
pub fn require_netns_support() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the partition tests create network namespaces: run as root"
    );
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "the partition tests need `ip` from iproute2: apt-get install -y iproute2"
    );
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to the host by a veth pair with private addresses that
/// exist only on this pair; removed (with the pair) on drop.
pub struct NetNs {
    pub name: String,
    pub host_if: String,
    /// The host's end (reachable from inside the namespace).
    pub host_ip: String,
    /// The namespace's end.
    pub ns_ip: String,
    /// A second address on the host's end (for an operator the site can be cut off from
    /// while it still reaches `host_ip`).
    pub host_ip2: String,
}

impl NetNs {
    /// `index` is where the search for a free `10.213.<index>.0/29` starts.
    pub fn create(index: u8) -> Self {
        require_netns_support();
        // Tests run in parallel processes: skip subnets another namespace already uses.
        let index = (0..=250u8)
            .map(|i| index.wrapping_add(i) % 251)
            .find(|i| {
                Command::new("ip")
                    .args(["-o", "addr", "show", "to", &format!("10.213.{i}.0/29")])
                    .output()
                    .is_ok_and(|o| o.stdout.is_empty())
            })
            .expect("a free 10.213.x.0/29 subnet");
        let tag = format!("{}{}", std::process::id() % 100_000, index);
        let ns = Self {
            name: format!("brsc{tag}"),
            host_if: format!("brh{tag}"),
            host_ip: format!("10.213.{index}.1"),
            ns_ip: format!("10.213.{index}.2"),
            host_ip2: format!("10.213.{index}.3"),
        };
        // Leftovers of an aborted run with the same name would make `add` fail.
        let _ = Command::new("ip")
            .args(["link", "del", &ns.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &ns.name]).output();
        let ns_if = format!("brn{tag}");
        ip(&["netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/29", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/29", ns.host_ip2),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/29", ns.ns_ip),
            "dev",
            &ns_if,
        ]);
        ns.exec(&["ip", "link", "set", &ns_if, "up"]);
        ns
    }

    pub fn exec(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// Symmetric partition: the host's end of the pair goes down.
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]);
    }

    pub fn heal(&self) {
        ip(&["link", "set", &self.host_if, "up"]);
    }

    /// One-way: packets from the host to the namespace are dropped (its own packets
    /// still leave, but no answer comes back).
    pub fn blackhole_inbound(&self) {
        ip(&["route", "add", "blackhole", &format!("{}/32", self.ns_ip)]);
    }

    /// Asymmetric: inside the namespace, everything addressed to `ip` is dropped; the rest
    /// of the host stays reachable.
    pub fn blackhole_from_inside(&self, ip: &str) {
        self.exec(&["ip", "route", "add", "blackhole", &format!("{ip}/32")]);
    }

    pub fn clear_blackhole_inside(&self, ip: &str) {
        self.exec(&["ip", "route", "del", "blackhole", &format!("{ip}/32")]);
    }

    pub fn clear_blackhole(&self) {
        ip(&["route", "del", "blackhole", &format!("{}/32", self.ns_ip)]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "blackhole", &format!("{}/32", self.ns_ip)])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
