//! Real MySQL 9.7 servers for integration tests.
//!
//! [`MysqlCluster::start`] starts N throw-away servers on free loopback ports, each a copy of a
//! template data directory, through `scripts/mysql-instance.sh` (which the local playground
//! uses too). The template is initialised once and shared: by every test of a run through a
//! file lock, and by later runs as long as the installed `mysqld` binary is the same one.
//!
//! Teardown must not depend on a test passing: [`MysqlCluster`]'s `Drop` kills every
//! instance's process group, and the first cluster of each process sweeps the run
//! directories of earlier test processes that died without cleaning up (their owner pid is
//! gone), so an aborted run never leaks servers.
//!
//! MySQL comes from `scripts/install-test-deps.sh` (`.deps/mysql` under the repository, or
//! `BLOODRAVEN_MYSQL_PREFIX`). When it is missing, starting a cluster fails with a message that
//! names that script: tests never skip silently.

use std::fmt;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bloodraven::ports::mysql::SourceEndpoint;

/// The replication user every template carries (see `scripts/mysql-instance.sh`).
pub const REPL_USER: &str = "repl";
pub const REPL_PASSWORD: &str = "repl";
/// The operator user: root over TCP from 127.0.0.1, no password (throw-away servers only).
pub const ROOT_USER: &str = "root";

const INSTALL_HINT: &str = "run scripts/install-test-deps.sh (installs MySQL 9.7 into .deps/)";

/// Why the harness could not do what a test asked.
#[derive(Debug)]
pub struct HarnessError(String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn err(message: impl Into<String>) -> HarnessError {
    HarnessError(message.into())
}

pub type HarnessResult<T> = Result<T, HarnessError>;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn instance_script() -> PathBuf {
    repo_root().join("scripts/mysql-instance.sh")
}

/// The MySQL prefix: `BLOODRAVEN_MYSQL_PREFIX`, else `.deps/mysql` under the repository.
pub fn mysql_prefix() -> PathBuf {
    std::env::var_os("BLOODRAVEN_MYSQL_PREFIX")
        .map_or_else(|| repo_root().join(".deps/mysql"), PathBuf::from)
}

fn mysqld_binary() -> PathBuf {
    mysql_prefix().join("usr/sbin/mysqld")
}

fn mysql_client() -> PathBuf {
    mysql_prefix().join("usr/bin/mysql")
}

/// Where clusters keep their files: `BLOODRAVEN_TEST_RUN_DIR`, else `.work/mysql-tests`.
fn work_root() -> PathBuf {
    std::env::var_os("BLOODRAVEN_TEST_RUN_DIR")
        .map_or_else(|| repo_root().join(".work/mysql-tests"), PathBuf::from)
}

/// Fails with the install command when the prefix has no working mysqld.
fn require_mysql() -> HarnessResult<()> {
    check_mysql_installed(&mysql_prefix())
}

/// Fails, naming the install command, unless `prefix` holds a mysqld that runs.
pub fn check_mysql_installed(prefix: &Path) -> HarnessResult<()> {
    let binary = prefix.join("usr/sbin/mysqld");
    let works = Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        Ok(())
    } else {
        Err(err(format!(
            "MySQL 9.7 is not installed: {} does not run; {INSTALL_HINT}",
            binary.display()
        )))
    }
}

fn script(args: &[&str]) -> Command {
    script_in(None, args)
}

/// The instance script, run inside network namespace `netns` when given (`ip netns exec`):
/// the server then listens on that namespace's loopback, reachable only from inside it.
fn script_in(netns: Option<&str>, args: &[&str]) -> Command {
    let mut command = in_netns(netns, "bash");
    command
        .arg(instance_script())
        .args(args)
        .env("MYSQL_PREFIX", mysql_prefix());
    command
}

/// `program`, or `ip netns exec NETNS program`.
fn in_netns(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        None => Command::new(program),
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns]).arg(program);
            command
        }
    }
}

fn check(output: &Output, what: &str) -> HarnessResult<String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    } else {
        Err(err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end(),
            String::from_utf8_lossy(&output.stdout).trim_end()
        )))
    }
}

fn run(mut command: Command, what: &str) -> HarnessResult<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("{what}: cannot run: {e}")))?;
    check(&output, what)
}

/// The template data directory, keyed by the mysqld binary so an upgrade gets a fresh one.
fn template_dir() -> HarnessResult<PathBuf> {
    static TEMPLATE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| build_template().map_err(|e| e.0))
        .clone()
        .map_err(HarnessError)
}

fn build_template() -> HarnessResult<PathBuf> {
    let root = work_root();
    fs::create_dir_all(&root).map_err(|e| err(format!("{}: {e}", root.display())))?;
    // Keyed by the mysqld install and the script that builds it, so a change to either
    // gets a fresh template.
    let mysqld =
        file_stamp(&mysqld_binary()).map_err(|e| err(format!("mysqld: {e}; {INSTALL_HINT}")))?;
    let builder = file_stamp(&instance_script())
        .map_err(|e| err(format!("{}: {e}", instance_script().display())))?;
    let dir = root.join(format!("template-{mysqld}-{builder}"));
    // Other test processes (nextest runs one per test) may be building the same template.
    let lock_path = root.join("template.lock");
    let lock =
        File::create(&lock_path).map_err(|e| err(format!("{}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| err(format!("locking {}: {e}", lock_path.display())))?;
    if !dir.join("READY").exists() {
        remove_old_templates(&root, &dir);
    }
    let dir_arg = dir.to_string_lossy().into_owned();
    let built = run(
        script(&["template", &dir_arg]),
        "mysql-instance.sh template",
    );
    drop(lock);
    built.map(|_| dir)
}

/// `SIZE-MTIME` of a file.
fn file_stamp(path: &Path) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    let mtime = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(format!("{}-{mtime}", meta.len()))
}

/// Templates of an earlier mysqld install (each is ~110 MB). Called under the template lock.
fn remove_old_templates(root: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let is_template = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("template-"));
        if is_template && path != keep {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Owner record of a run directory: pid plus the process start time, so a reused pid is not
/// mistaken for a live owner.
fn process_start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime), counted after the parenthesised command name.
    let after_comm = stat.rsplit_once(')')?.1;
    after_comm.split_whitespace().nth(19).map(str::to_owned)
}

/// The owner record of this process, as written into each of its run directories.
pub fn owner_record() -> String {
    let pid = std::process::id();
    format!("{pid} {}", process_start_time(pid).unwrap_or_default())
}

fn owner_alive(record: &str) -> bool {
    let mut parts = record.split_whitespace();
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    pid.parse::<u32>()
        .ok()
        .and_then(process_start_time)
        .is_some_and(|now| now == start)
}

/// Stops the servers of earlier test processes that died without tearing down. Once per
/// process.
fn sweep_stale_runs() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(sweep_stale_runs_now);
}

/// The run directories (one per cluster) live here.
pub fn runs_root() -> PathBuf {
    work_root().join("runs")
}

/// Stops every instance in run directories whose owner process is gone, and removes them.
pub fn sweep_stale_runs_now() {
    let Ok(entries) = fs::read_dir(runs_root()) else {
        return;
    };
    for run_dir in entries.flatten().map(|e| e.path()) {
        let owner = fs::read_to_string(run_dir.join("owner")).unwrap_or_default();
        if owner_alive(&owner) || (owner.is_empty() && recently_created(&run_dir)) {
            // A cluster of another process may be between creating the directory and
            // writing its owner record.
            continue;
        }
        stop_all_in(&run_dir);
        let _ = fs::remove_dir_all(&run_dir);
    }
}

fn recently_created(dir: &Path) -> bool {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < Duration::from_secs(60))
}

/// Starts a server in `dir` with the instance script alone, owned by no cluster (for tests
/// of the sweeper). Returns the supervisor pid.
pub fn start_unowned_instance(dir: &Path, port: u16) -> HarnessResult<u32> {
    require_mysql()?;
    let template = template_dir()?.to_string_lossy().into_owned();
    let dir_arg = dir.to_string_lossy().into_owned();
    run(
        script(&["start", &dir_arg, &port.to_string(), "1", &template]),
        "mysql-instance.sh start",
    )?;
    let pid = fs::read_to_string(dir.join("supervisor.pid"))
        .map_err(|e| err(format!("no supervisor.pid: {e}")))?;
    pid.trim()
        .parse()
        .map_err(|e| err(format!("bad supervisor.pid: {e}")))
}

/// Whether `pid` is a live (not zombie) process. PID 1 here does not reap orphans.
pub fn process_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s != "Z"))
        })
        .unwrap_or(false)
}

fn stop_all_in(run_dir: &Path) {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()) {
        if dir.join("supervisor.pid").exists() || dir.join("mysqld.pid").exists() {
            let dir_arg = dir.to_string_lossy().into_owned();
            let _ = script(&["stop", &dir_arg]).stdin(Stdio::null()).output();
        }
    }
}

pub fn free_port() -> HarnessResult<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| err(format!("binding a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| err(format!("reading the free port: {e}")))
}

/// Numbers the run directories of one process.
static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// N MySQL servers on loopback, torn down on drop.
pub struct MysqlCluster {
    run_dir: PathBuf,
    instances: Vec<MysqlInstance>,
}

impl MysqlCluster {
    /// Starts `n` servers in parallel (server ids 1..=n), each from the shared template.
    pub fn start(n: usize) -> HarnessResult<Self> {
        Self::start_in(n, None)
    }

    /// [`MysqlCluster::start`] inside network namespace `netns` (which must exist and have
    /// its loopback up): reachable only from processes in that namespace.
    pub fn start_in(n: usize, netns: Option<&str>) -> HarnessResult<Self> {
        require_mysql()?;
        sweep_stale_runs();
        let template = template_dir()?;
        let run_dir = runs_root().join(format!(
            "{}-{}",
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&run_dir).map_err(|e| err(format!("{}: {e}", run_dir.display())))?;
        fs::write(run_dir.join("owner"), owner_record())
            .map_err(|e| err(format!("writing the run owner: {e}")))?;
        // From here on, Drop cleans up whatever started.
        let mut cluster = MysqlCluster {
            run_dir,
            instances: Vec::with_capacity(n),
        };
        // Every spawned start is waited for below, even after a failure, so no server
        // comes up unnoticed after this function returned.
        let mut starting: Vec<(MysqlInstance, Child)> = Vec::with_capacity(n);
        let mut failures = Vec::new();
        for index in 0..n {
            let server_id = u32::try_from(index + 1).map_err(|_| err("too many instances"))?;
            let spawned = free_port().and_then(|port| {
                let instance = MysqlInstance {
                    dir: cluster.run_dir.join(format!("mysql{server_id}")),
                    port,
                    server_id,
                    template: template.clone(),
                    netns: netns.map(str::to_owned),
                };
                instance.spawn_start().map(|child| (instance, child))
            });
            match spawned {
                Ok(pair) => starting.push(pair),
                Err(e) => failures.push(format!("instance {server_id}: {e}")),
            }
        }
        for (mut instance, child) in starting {
            let started = wait_child(child, "mysql-instance.sh start");
            // A port taken between picking and binding gets one more try on a fresh port.
            let started = match started {
                Ok(()) => Ok(()),
                Err(first) if instance.error_log().contains("already in use") => free_port()
                    .and_then(|port| {
                        instance.port = port;
                        instance.spawn_start()
                    })
                    .and_then(|c| wait_child(c, "retry start"))
                    .map_err(|second| err(format!("{first}; after a port retry: {second}"))),
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                failures.push(format!("instance {}: {e}", instance.server_id));
            }
            cluster.instances.push(instance);
        }
        if failures.is_empty() {
            Ok(cluster)
        } else {
            Err(err(failures.join("\n")))
        }
    }

    pub fn instances(&self) -> &[MysqlInstance] {
        &self.instances
    }

    /// The instance at `index` (0-based).
    pub fn get(&self, index: usize) -> HarnessResult<&MysqlInstance> {
        self.instances
            .get(index)
            .ok_or_else(|| err(format!("the cluster has no instance {index}")))
    }
}

impl Drop for MysqlCluster {
    fn drop(&mut self) {
        for instance in &self.instances {
            // A SIGSTOPped mysqld still dies from SIGKILL; continue it anyway so nothing
            // lingers stopped if the kill races with a restart.
            let _ = instance.signal("CONT");
            instance.stop();
        }
        let _ = fs::remove_dir_all(&self.run_dir);
    }
}

fn wait_child(child: Child, what: &str) -> HarnessResult<()> {
    let output = child
        .wait_with_output()
        .map_err(|e| err(format!("{what}: {e}")))?;
    check(&output, what).map(|_| ())
}

/// One server of a [`MysqlCluster`].
pub struct MysqlInstance {
    dir: PathBuf,
    port: u16,
    server_id: u32,
    template: PathBuf,
    netns: Option<String>,
}

impl MysqlInstance {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// This server as a replication or clone source.
    pub fn endpoint(&self) -> SourceEndpoint {
        SourceEndpoint {
            host: "127.0.0.1".to_owned(),
            port: self.port,
        }
    }

    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The `mysql` client binary of the installed prefix.
    pub fn client_binary() -> PathBuf {
        mysql_client()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn dir_arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn spawn_start(&self) -> HarnessResult<Child> {
        let port = self.port.to_string();
        let id = self.server_id.to_string();
        let template = self.template.to_string_lossy().into_owned();
        script_in(
            self.netns.as_deref(),
            &["start", &self.dir_arg(), &port, &id, &template],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("spawning mysql-instance.sh start: {e}")))
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The current mysqld pid (it changes when the supervisor restarts the server).
    pub fn mysqld_pid(&self) -> HarnessResult<u32> {
        let text = fs::read_to_string(self.dir.join("mysqld.pid"))
            .map_err(|e| err(format!("{}: no mysqld.pid: {e}", self.address())))?;
        text.trim()
            .parse()
            .map_err(|e| err(format!("{}: bad mysqld.pid: {e}", self.address())))
    }

    fn signal(&self, signal: &str) -> HarnessResult<()> {
        let pid = self.mysqld_pid()?.to_string();
        let mut command = Command::new("kill");
        command.args([format!("-{signal}"), pid]);
        run(command, &format!("kill -{signal}")).map(|_| ())
    }

    /// SIGKILL mysqld. The supervisor exits too (only exit code 16 is restarted); returns
    /// once the port refuses connections.
    pub fn kill9(&self) -> HarnessResult<()> {
        self.signal("KILL")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() > deadline {
                return Err(err(format!(
                    "{} still accepts after SIGKILL",
                    self.address()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Freeze mysqld (a hung server: the port accepts, nothing answers).
    pub fn sigstop(&self) -> HarnessResult<()> {
        self.signal("STOP")
    }

    pub fn sigcont(&self) -> HarnessResult<()> {
        self.signal("CONT")
    }

    /// Kill whatever runs (SIGKILL, no clean shutdown) and start the same data directory again
    /// on the same port.
    pub fn restart(&self) -> HarnessResult<()> {
        let _ = self.signal("CONT");
        self.stop();
        let child = self.spawn_start()?;
        wait_child(child, "mysql-instance.sh start (restart)")
    }

    /// SIGKILL the supervisor and mysqld process group.
    pub fn stop(&self) {
        let _ = script(&["stop", &self.dir_arg()])
            .stdin(Stdio::null())
            .output();
    }

    /// How many times the supervisor restarted mysqld after exit code 16 (CLONE, RESTART).
    pub fn supervisor_restarts(&self) -> usize {
        fs::read_to_string(self.dir.join("supervisor.log"))
            .unwrap_or_default()
            .matches("rc=16")
            .count()
    }

    /// Runs SQL as root through the `mysql` client (independent of the adapter under test);
    /// returns the tab-separated rows without headers.
    pub fn sql(&self, sql: &str) -> HarnessResult<String> {
        self.sql_as(ROOT_USER, "", sql)
    }

    /// Runs SQL as `user` with `password` over TCP.
    pub fn sql_as(&self, user: &str, password: &str, sql: &str) -> HarnessResult<String> {
        let mut command = in_netns(self.netns.as_deref(), mysql_client());
        command
            .args([
                "--no-defaults",
                "-N",
                "-B",
                "--connect-timeout=5",
                "-h127.0.0.1",
            ])
            .arg(format!("-P{}", self.port))
            .arg(format!("-u{user}"))
            .arg("-e")
            .arg(sql);
        if !password.is_empty() {
            // Through the environment rather than argv, so it never shows in `ps`.
            command.env("MYSQL_PWD", password);
        }
        run(command, &format!("mysql on {}: {sql}", self.address()))
    }

    /// Polls until the server answers `SELECT 1`, for at most `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> HarnessResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.sql("SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(err(format!(
                        "{} not ready after {timeout:?}: {e}",
                        self.address()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
