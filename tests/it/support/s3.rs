//! A real S3 server for the backup tests: SeaweedFS's `weed mini` (master, volume, filer
//! and S3 gateway in one process), with SigV4 authentication on, on loopback ports of its
//! own, over a throw-away directory. Killed on drop.
//!
//! `weed` comes from `scripts/install-test-deps.sh seaweedfs`; without it, starting fails
//! naming that command: the tests never skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bloodraven::adapters::storage::S3Settings;

pub const ACCESS_KEY: &str = "bloodraven-test";
pub const SECRET_KEY: &str = "bloodraven-test-secret";

pub struct SeaweedS3 {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: Ports,
}

#[derive(Clone, Copy)]
struct Ports {
    s3: u16,
    master: u16,
    volume: u16,
    filer: u16,
    iceberg: u16,
    lance: u16,
}

fn weed() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/bin/weed");
    assert!(
        bin.exists(),
        "SeaweedFS's weed is missing at {}: run scripts/install-test-deps.sh seaweedfs",
        bin.display()
    );
    bin
}

/// A free port whose gRPC twin (port + 10000, SeaweedFS's convention) is free too.
fn free_pair() -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for SeaweedFS");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl SeaweedS3 {
    /// Starts a server and waits until its S3 gateway answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(
            dir.path().join("s3.json"),
            format!(
                r#"{{"identities":[{{"name":"test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("s3.json");
        let ports = Ports {
            s3: free_pair(),
            master: free_pair(),
            volume: free_pair(),
            filer: free_pair(),
            iceberg: free_port(),
            lance: free_port(),
        };
        let mut server = Self {
            child: None,
            dir,
            ports,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let p = self.ports;
        let log = std::fs::File::create(self.dir.path().join("weed.log")).expect("log");
        let child = Command::new(weed())
            .arg("mini")
            .arg(format!("-dir={}", self.dir.path().join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-metricsIp=127.0.0.1",
            ])
            .args([
                "-admin.ui=false",
                "-master.telemetry=false",
                "-webdav=false",
            ])
            .arg(format!(
                "-s3.config={}",
                self.dir.path().join("s3.json").display()
            ))
            .arg(format!("-s3.port={}", p.s3))
            .arg(format!("-master.port={}", p.master))
            .arg(format!("-volume.port={}", p.volume))
            .arg(format!("-filer.port={}", p.filer))
            .arg(format!("-s3.port.iceberg={}", p.iceberg))
            .arg(format!("-s3.port.lance={}", p.lance))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn weed mini");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", p.s3)).is_err() {
            assert!(
                Instant::now() < deadline,
                "weed mini did not open its S3 port in 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.s3)
    }

    /// The settings a test hands the storage adapter (the process environment is never
    /// touched: tests share it).
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            session_token: None,
        }
    }

    /// The environment a `bloodraven backup` child process reads S3 settings from.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// Creates `bucket` through `weed shell` (retried while the master elects itself).
    pub fn create_bucket(&self, bucket: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(weed())
                .arg("shell")
                .arg(format!("-master=127.0.0.1:{}", self.ports.master))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("weed shell");
            {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().expect("stdin");
                writeln!(stdin, "s3.bucket.create -name {bucket}").expect("write");
            }
            let out = child.wait_with_output().expect("weed shell output");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if text.contains("created bucket") || text.contains("already exist") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "creating bucket {bucket} failed: {text}\nweed log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SeaweedS3 {
    fn drop(&mut self) {
        self.kill();
    }
}
