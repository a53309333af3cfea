//! The failover benchmark behind `scripts/bench-failover.sh`: for each trial, a fresh MySQL
//! pair (iad primary, pdx replica), `bloodraven standalone` with DEFAULT settings, and a
//! client writing a row every 10 ms to whichever site accepts it. Then one fault:
//!
//! - `kill`: kill -9 of the primary's mysqld; RTO = kill → first acknowledged write on pdx;
//! - `hang`: SIGSTOP of the primary's mysqld; RTO = stop → first acknowledged write on pdx;
//! - `planned`: `POST /planned-failover?target=pdx`; window = last ack on iad → first ack
//!   on pdx; plus acknowledged writes missing on pdx afterwards.
//!
//! ```text
//! failover_bench --bloodraven target/release/bloodraven [--trials 20] [--kinds kill,hang,planned]
//!                [--work .work/bench-failover]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/writer.rs"]
#[allow(dead_code)]
mod writer;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bloodraven::shells::standalone::client;
use writer::{Ack, SiteTarget, Writer};

struct Args {
    bloodraven: PathBuf,
    trials: usize,
    kinds: Vec<String>,
    work: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args() -> Args {
    let mut args = Args {
        bloodraven: repo().join("target/release/bloodraven"),
        trials: 20,
        kinds: vec!["kill".into(), "hang".into(), "planned".into()],
        work: repo().join(".work/bench-failover"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bloodraven" => args.bloodraven = value.into(),
            "--trials" => args.trials = value.parse().expect("--trials N"),
            "--kinds" => args.kinds = value.split(',').map(str::to_owned).collect(),
            "--work" => args.work = value.into(),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn instance_script(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/mysql-instance.sh"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running mysql-instance.sh")
}

fn check(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn sql(dir: &Path, statement: &str) {
    let d = dir.to_string_lossy();
    check(&instance_script(&["sql", &d, statement]), statement);
}

fn mysqld_pid(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mysqld.pid"))
        .expect("mysqld.pid")
        .trim()
        .to_owned()
}

fn signal(pid: &str, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .stderr(Stdio::null())
        .status();
}

struct Trial {
    dirs: [PathBuf; 2],
    ports: [u16; 2],
    http: String,
    server: Child,
}

impl Drop for Trial {
    fn drop(&mut self) {
        for dir in &self.dirs {
            if let Ok(pid) = std::fs::read_to_string(dir.join("mysqld.pid")) {
                signal(pid.trim(), "CONT");
            }
        }
        signal(&self.server.id().to_string(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.server.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        for dir in &self.dirs {
            let _ = instance_script(&["stop", &dir.to_string_lossy()]);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn setup(args: &Args, template: &Path, n: usize) -> Trial {
    let base = args.work.join(format!("trial-{n}"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("trial dir");
    let dirs = [base.join("iad"), base.join("pdx")];
    let ports = [free_port(), free_port()];
    let t = template.to_string_lossy().into_owned();
    let starts: Vec<_> = dirs
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (dir, port))| {
            let (d, p, id, t) = (
                dir.to_string_lossy().into_owned(),
                port.to_string(),
                (i + 1).to_string(),
                t.clone(),
            );
            std::thread::spawn(move || instance_script(&["start", &d, &p, &id, &t]))
        })
        .collect();
    for start in starts {
        check(&start.join().expect("start thread"), "starting mysqld");
    }
    sql(
        &dirs[0],
        "CREATE DATABASE bench; CREATE TABLE bench.t (id BIGINT PRIMARY KEY, site VARCHAR(64))",
    );
    sql(
        &dirs[1],
        &format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={}, \
             SOURCE_USER='repl', SOURCE_PASSWORD='repl', SOURCE_AUTO_POSITION=1, SOURCE_SSL=1; \
             START REPLICA; SET GLOBAL super_read_only = ON",
            ports[0]
        ),
    );
    let http_port = free_port();
    std::fs::write(base.join("repl.password"), "repl\n").expect("password file");
    // DEFAULT settings: only what has no default (sites, credentials, where to listen).
    let config = format!(
        "sites:\n  - {{name: iad, address: \"127.0.0.1:{}\"}}\n  - {{name: pdx, address: \"127.0.0.1:{}\"}}\n\
         credentials:\n  operator: {{user: root}}\n  replication: {{user: repl, passwordFile: repl.password}}\n\
         listen: 127.0.0.1:{http_port}\nstateFile: state.json\n",
        ports[0], ports[1]
    );
    std::fs::write(base.join("group.yaml"), config).expect("config");
    let log = std::fs::File::create(base.join("bloodraven.log")).expect("log");
    let server = Command::new(&args.bloodraven)
        .args(["standalone", "--config"])
        .arg(base.join("group.yaml"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting bloodraven");
    let trial = Trial {
        dirs,
        ports,
        http: format!("http://127.0.0.1:{http_port}"),
        server,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client::request(&trial.http, "GET", "/status", Duration::from_secs(2)).await
            && r.body.contains("\"activeSite\":\"iad\"")
            && r.body.contains("\"reason\":\"Healthy\"")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the group never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trial
}

struct Measured {
    rto: Duration,
    window: Duration,
    acked: usize,
    lost: usize,
}

async fn run_trial(kind: &str, trial: &Trial) -> Option<Measured> {
    let sites = vec![
        SiteTarget {
            name: "iad".into(),
            host: "127.0.0.1".into(),
            port: trial.ports[0],
        },
        SiteTarget {
            name: "pdx".into(),
            host: "127.0.0.1".into(),
            port: trial.ports[1],
        },
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ack>();
    let writer_stop = Arc::clone(&stop);
    let writer_task = tokio::spawn(async move {
        let mut writer = Writer::new(sites, "root", "", "bench.t");
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !writer_stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            if let Some(ack) = writer.tick().await {
                let _ = tx.send(ack);
            }
        }
        writer
    });
    let mut acks: Vec<Ack> = Vec::new();
    // Warm up: writes flowing to iad.
    while acks.iter().filter(|a| a.site == 0).count() < 30 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(a)) => acks.push(a),
            _ => return None,
        }
    }
    let fault_at = Instant::now();
    let iad_pid = mysqld_pid(&trial.dirs[0]);
    match kind {
        "kill" => signal(&iad_pid, "KILL"),
        "hang" => signal(&iad_pid, "STOP"),
        _ => {
            let r = client::request(
                &trial.http,
                "POST",
                "/planned-failover?target=pdx",
                Duration::from_secs(10),
            )
            .await
            .ok()?;
            if r.status != 202 {
                eprintln!("planned failover refused: {} {}", r.status, r.body);
                return None;
            }
        }
    }
    let first_pdx = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(a)) => {
                acks.push(a);
                if a.site == 1 && a.at > fault_at {
                    break a;
                }
            }
            _ => return None,
        }
    };
    // A few more writes on the new primary, then count what survived.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if let Ok(Some(a)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await {
            acks.push(a);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut writer = writer_task.await.ok()?;
    while let Ok(a) = rx.try_recv() {
        acks.push(a);
    }
    let last_iad = acks
        .iter()
        .filter(|a| a.site == 0 && a.at <= first_pdx.at)
        .map(|a| a.at)
        .max()
        .unwrap_or(fault_at);
    let ids: Vec<u64> = acks.iter().map(|a| a.id).collect();
    let lost = writer
        .missing_on(1, &ids)
        .await
        .map_or(usize::MAX, |m| m.len());
    Some(Measured {
        rto: first_pdx.at.duration_since(fault_at),
        window: first_pdx.at.duration_since(last_iad),
        acked: acks.len(),
        lost,
    })
}

/// Nearest-rank percentile (`pct` in 1..=100) of sorted values.
fn percentile(sorted: &[f64], pct: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn summary(label: &str, values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{label}: n={} median={:.3}s p95={:.3}s min={:.3}s max={:.3}s",
        values.len(),
        percentile(values, 50),
        percentile(values, 95),
        values.first().copied().unwrap_or(f64::NAN),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    assert!(
        args.bloodraven.exists(),
        "{} does not exist: build it with cargo build --release",
        args.bloodraven.display()
    );
    std::fs::create_dir_all(&args.work).expect("work dir");
    let template = args.work.join("template");
    check(
        &instance_script(&["template", &template.to_string_lossy()]),
        "building the template (MySQL missing? run scripts/install-test-deps.sh)",
    );
    let mut report = Vec::new();
    for kind in &args.kinds {
        let mut rtos = Vec::new();
        let mut windows = Vec::new();
        let mut lost_total = 0usize;
        let mut lost_trials = 0usize;
        let mut failed = 0usize;
        for n in 1..=args.trials {
            let trial = setup(&args, &template, n).await;
            let measured = run_trial(kind, &trial).await;
            drop(trial);
            // Kept for inspection: the trial directory itself is removed.
            let logs = args.work.join("logs");
            let _ = std::fs::create_dir_all(&logs);
            let _ = std::fs::copy(
                args.work.join(format!("trial-{n}/bloodraven.log")),
                logs.join(format!("{kind}-{n}.log")),
            );
            if let Some(m) = measured {
                println!(
                    "{kind} #{n}: rto={:.3}s window={:.3}s acked={} lost={}",
                    m.rto.as_secs_f64(),
                    m.window.as_secs_f64(),
                    m.acked,
                    m.lost
                );
                rtos.push(m.rto.as_secs_f64());
                windows.push(m.window.as_secs_f64());
                lost_total = lost_total.saturating_add(m.lost);
                lost_trials += usize::from(m.lost > 0);
            } else {
                println!("{kind} #{n}: FAILED (no write reached pdx)");
                failed += 1;
            }
        }
        let label = match kind.as_str() {
            "kill" => "unplanned (kill -9) RTO, fault -> first ack on new primary",
            "hang" => "hang (SIGSTOP) RTO, fault -> first ack on new primary",
            _ => "planned switchover, request -> first ack on new primary",
        };
        report.push(summary(label, &mut rtos));
        report.push(summary(
            &format!("{kind}: write-unavailability window (last ack on old -> first ack on new)"),
            &mut windows,
        ));
        report.push(format!(
            "{kind}: acknowledged writes lost: {lost_total} in total, {lost_trials} trials with loss, {failed} trials failed"
        ));
    }
    println!("\n== summary ==");
    for line in report {
        println!("{line}");
    }
}
