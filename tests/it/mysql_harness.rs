//! The MySQL test harness itself: a missing install fails loudly, teardown is reliable, and
//! servers leaked by a dead test process are swept.

use std::error::Error;
use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::mysql::{
    MysqlCluster, MysqlInstance, check_mysql_installed, free_port, owner_record, process_running,
    runs_root, start_unowned_instance, sweep_stale_runs_now,
};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

fn refuses(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_err()
}

#[test]
fn a_missing_install_fails_naming_the_install_script() {
    let result = check_mysql_installed(Path::new("/nonexistent/bloodraven-prefix"));
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("scripts/install-test-deps.sh"),
        "message does not name the install command: {message:?}"
    );
}

#[test]
fn dropping_a_cluster_stops_its_servers_and_removes_its_files() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let ports: Vec<u16> = cluster
        .instances()
        .iter()
        .map(MysqlInstance::port)
        .collect();
    let dirs: Vec<_> = cluster
        .instances()
        .iter()
        .map(|i| i.dir().to_owned())
        .collect();
    let pids = cluster
        .instances()
        .iter()
        .map(MysqlInstance::mysqld_pid)
        .collect::<Result<Vec<_>, _>>()?;
    for instance in cluster.instances() {
        assert_eq!(
            instance.sql("SELECT @@server_id")?,
            instance.server_id().to_string()
        );
    }
    assert!(ports.iter().all(|&p| !refuses(p)));
    drop(cluster);
    // SIGKILL is asynchronous: give the kernel a moment to close the listening sockets and
    // to finish the processes (a loaded machine can take a while to tear down a mysqld's
    // memory after its sockets are gone; seen in CI).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let gone =
        || ports.iter().all(|&p| refuses(p)) && pids.iter().all(|&pid| !process_running(pid));
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ports.iter().all(|&p| refuses(p)), "a server still listens");
    assert!(
        pids.iter().all(|&pid| !process_running(pid)),
        "a mysqld survived"
    );
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "instance files left behind"
    );
    Ok(())
}

#[test]
fn the_sweeper_stops_servers_of_a_dead_test_process() -> TestResult {
    let run_dir = runs_root().join(format!("stale-{}", std::process::id()));
    fs::create_dir_all(&run_dir)?;
    // Owned by this (live) process while it starts, so the sweeps of clusters starting in
    // parallel tests leave it alone.
    fs::write(run_dir.join("owner"), owner_record())?;
    let port = free_port()?;
    let supervisor = start_unowned_instance(&run_dir.join("mysql1"), port)?;
    assert!(process_running(supervisor) && !refuses(port));
    // Now its owner dies: pid 2^22 + 1 is above the kernel's pid_max, never alive.
    fs::write(run_dir.join("owner"), "4194305 1")?;

    sweep_stale_runs_now();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !refuses(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refuses(port), "the leaked server still listens");
    assert!(
        !process_running(supervisor),
        "the leaked supervisor survived"
    );
    assert!(!run_dir.exists(), "the stale run directory was not removed");
    Ok(())
}
