//! The rendered MySQL configuration run by real MySQL 9.7 (`.deps/mysql`, from
//! `scripts/install-test-deps.sh`):
//! - every site's generated my.cnf passes `mysqld --validate-config` (the clone plugin is
//!   loaded, so its variables are checked too);
//! - the rendered `init-datadir` script initialises an empty data directory with the
//!   site's my.cnf and is a no-op on an initialised one, and mysqld then boots fenced
//!   (`super_read_only`), with GTIDs on and the site's server-id, and lets root in over TCP
//!   with a password full of quoting hazards.
//!
//! Not real here: the container image and the pod. The rendered paths (`/var/lib/mysql`,
//! `/tmp`) are rewritten to a temporary directory, and a `mysqld` wrapper on `PATH` adds
//! the prefix's own locations (basedir, plugin dir, messages) that the image has built in.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bloodraven::render::deployment::INIT_DATADIR_SCRIPT;
use bloodraven::render::{RenderOptions, mycnf, render};

use super::render_golden::{CASES, load_group};
use super::support::mysql::{check_mysql_installed, mysql_prefix};

fn prefix() -> PathBuf {
    let prefix = mysql_prefix();
    if let Err(e) = check_mysql_installed(&prefix) {
        panic!("{e}");
    }
    prefix
}

/// Flags the image has compiled in or in its /etc/my.cnf, for the prefix install.
fn prefix_args(prefix: &Path) -> Vec<String> {
    vec![
        format!("--basedir={}", prefix.join("usr").display()),
        format!(
            "--lc-messages-dir={}",
            prefix.join("usr/share/mysql").display()
        ),
        format!(
            "--character-sets-dir={}",
            prefix.join("usr/share/mysql/charsets").display()
        ),
        format!(
            "--plugin-dir={}",
            prefix.join("usr/lib/mysql/plugin").display()
        ),
    ]
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn validate_config(prefix: &Path, cnf: &Path, files: &Path) -> Output {
    Command::new(prefix.join("usr/sbin/mysqld"))
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(prefix_args(prefix))
        .arg(format!("--secure-file-priv={}", files.display()))
        .arg("--validate-config")
        .output()
        .expect("mysqld runs")
}

#[test]
fn render_mycnf_passes_mysqld_validate_config() {
    let prefix = prefix();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut checked = 0;
    for (case, _) in CASES {
        let objects = render(&load_group(case), &RenderOptions::default()).unwrap();
        for (key, content) in objects.config_map.data.as_ref().unwrap() {
            let cnf = dir.path().join(format!("{case}-{key}"));
            std::fs::write(&cnf, content).unwrap();
            let out = validate_config(&prefix, &cnf, &files);
            assert!(
                out.status.success(),
                "{case} {key}:\n{content}\n{}",
                text(&out)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "two sites plus three sites");
    // The check can fail: an option mysqld does not know is refused.
    let cnf = dir.path().join("bad.cnf");
    std::fs::write(&cnf, "[mysqld]\nsuper-read-only = ON\nno-such-option = 1\n").unwrap();
    let out = validate_config(&prefix, &cnf, &files);
    assert!(!out.status.success());
    assert!(text(&out).contains("no-such-option"), "{}", text(&out));
}

/// A throw-away root of the paths the rendered pod uses.
struct PodRoot {
    dir: tempfile::TempDir,
}

impl PodRoot {
    fn data(&self) -> PathBuf {
        self.dir.path().join("var-lib-mysql")
    }
    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn new(prefix: &Path, cnf: &str) -> Self {
        let root = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in [root.tmp(), root.bin(), root.dir.path().join("files")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let cnf_path = root.dir.path().join("bloodraven.cnf");
        std::fs::write(&cnf_path, cnf).unwrap();
        // mysqld as the image runs it (its my.cnf includes the site's file), with the
        // prefix's locations and the pod's paths moved under this directory. This harness
        // runs as root, which mysqld only accepts with --user=root.
        let mut args = vec![format!("--defaults-file={}", cnf_path.display())];
        args.extend(prefix_args(prefix));
        args.extend([
            format!("--datadir={}", root.data().display()),
            format!("--tmpdir={}", root.tmp().display()),
            format!(
                "--secure-file-priv={}",
                root.dir.path().join("files").display()
            ),
            "--user=root".to_owned(),
            "--innodb-buffer-pool-size=32M".to_owned(),
            "--innodb-redo-log-capacity=32M".to_owned(),
            "--performance-schema=OFF".to_owned(),
            "--mysqlx=OFF".to_owned(),
        ]);
        let wrapper = format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            prefix.join("usr/sbin/mysqld").display(),
            args.join(" ")
        );
        let path = root.bin().join("mysqld");
        std::fs::write(&path, wrapper).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        root
    }

    /// Runs the rendered init script, its paths moved under this root.
    fn init_datadir(&self, password: &str) -> Output {
        // `/tmp/` first: the temporary root is itself under /tmp.
        let script = INIT_DATADIR_SCRIPT
            .replace("/tmp/", &format!("{}/", self.tmp().display()))
            .replace("/var/lib/mysql", &self.data().display().to_string());
        let path = format!(
            "{}:{}",
            self.bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .args(["-c", &script])
            .env("PATH", path)
            .env("MYSQL_ROOT_PASSWORD", password)
            .output()
            .expect("bash runs")
    }

    fn start(&self, port: u16) -> Child {
        Command::new(self.bin().join("mysqld"))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysql.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.path().join("error.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mysqld starts")
    }
}

fn sql(prefix: &Path, port: u16, password: &str, statement: &str) -> Output {
    Command::new(prefix.join("usr/bin/mysql"))
        .args(["--protocol=TCP", "-h127.0.0.1", "-uroot", "-N", "-B"])
        .arg(format!("-P{port}"))
        .args(["-e", statement])
        .env("MYSQL_PWD", password)
        .output()
        .expect("mysql runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn render_first_boot_initialises_and_boots_fenced() {
    let prefix = prefix();
    let group = load_group(CASES[0].0);
    let objects = render(&group, &RenderOptions::default()).unwrap();
    let site = &group.spec.sites[0].name;
    let cnf = &objects.config_map.data.as_ref().unwrap()[&format!("{site}.cnf")];
    let root = PodRoot::new(&prefix, cnf);
    let password = r#"p'w\"%s&x\\"#;

    let first = root.init_datadir(password);
    assert!(first.status.success(), "{}", text(&first));
    assert!(root.data().join("mysql").is_dir());
    assert!(
        !root.tmp().join("bloodraven-init.sql").exists(),
        "the SQL file with the password is removed"
    );
    let again = root.init_datadir(password);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("is initialised"), "{}", text(&again));

    let port = free_port();
    let mut child = root.start(port);
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let out = sql(
            &prefix,
            port,
            password,
            "SELECT @@super_read_only, @@gtid_mode, @@enforce_gtid_consistency, @@server_id, \
             @@log_bin, (SELECT COUNT(*) FROM mysql.user WHERE user = 'root' AND host = '%')",
        );
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "mysqld did not answer: {}\n{}",
            text(&out),
            std::fs::read_to_string(root.dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let write = sql(&prefix, port, password, "CREATE DATABASE fenced");
    let _ = child.kill();
    let _ = child.wait();

    let id = mycnf::server_id(group.metadata.name.as_deref().unwrap(), site);
    // Fenced, GTIDs and the binary log on, this site's server-id, and root@'%' for the
    // operator's network connections.
    assert_eq!(state, format!("1\tON\tON\t{id}\t1\t1"));
    assert!(!write.status.success(), "a fenced server took a write");
    assert!(text(&write).contains("super-read-only"), "{}", text(&write));
}
