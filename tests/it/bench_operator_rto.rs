//! RTO through the operator: kill -9 of the primary's mysqld to the first write a client gets
//! acknowledged by the promoted site, with the group's settings left at their defaults (2 s
//! polls), as `scripts/bench-failover.sh` measures standalone mode. The operator is the real
//! `bloodraven serve --controllers on` against the real API server; the sites are real MySQL
//! 9.7 on loopback, reached through the endpoint map (nothing runs pods here).
//!
//! A benchmark, not a test: `scripts/bench-operator-rto.sh [TRIALS]` runs it and the figures
//! go to docs/performance.md. Ignored, and outside the `kube_real` filter CI runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::failover_common::{TestResult, write_until};
use crate::kube_real_operator::{Fixture, Timing, active_site};

/// Nearest-rank percentile (`p` in whole percent) of sorted `values`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-operator-rto.sh"]
async fn bench_operator_rto() -> TestResult {
    let trials: usize = std::env::var("BLOODRAVEN_RTO_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let mut to_write = Vec::new();
    let mut to_status = Vec::new();
    for trial in 1..=trials {
        let fixture = Box::pin(Fixture::start_with(Timing::Defaults)).await?;
        let operator = fixture.operator("operator-a")?;
        fixture
            .wait_active("iad", Duration::from_secs(120))
            .await
            .map_err(|e| format!("{e}\n{}", operator.log_text()))?;
        let ports = [
            fixture.instance("iad")?.port(),
            fixture.instance("pdx")?.port(),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_until(
            [("iad", ports[0]), ("pdx", ports[1])],
            Arc::clone(&stop),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let killed = Instant::now();
        fixture.instance("iad")?.kill9()?;
        fixture
            .wait_group("pdx promoted", Duration::from_secs(60), |g| {
                active_site(g) == Some("pdx")
            })
            .await
            .map_err(|e| format!("{e}\n{}", operator.log_text()))?;
        let status = killed.elapsed();
        let deadline = Instant::now() + Duration::from_secs(10);
        while fixture
            .instance("pdx")?
            .sql("SELECT COUNT(*) FROM app.t WHERE site = 'pdx'")?
            == "0"
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let acks = writer.await?;
        let first = acks
            .iter()
            .find(|a| a.site == 1 && a.at > killed)
            .ok_or("no write acknowledged by pdx")?;
        let write = first.at - killed;
        eprintln!(
            "trial {trial}: kill -9 -> first acknowledged write on pdx {:.3} s; -> status.activeSite pdx {:.3} s",
            write.as_secs_f64(),
            status.as_secs_f64()
        );
        to_write.push(write);
        to_status.push(status);
    }
    to_write.sort();
    to_status.sort();
    eprintln!(
        "operator RTO over {trials} trials: first acknowledged write median {:.3} s, p95 {:.3} s; status median {:.3} s, p95 {:.3} s",
        percentile(&to_write, 50).as_secs_f64(),
        percentile(&to_write, 95).as_secs_f64(),
        percentile(&to_status, 50).as_secs_f64(),
        percentile(&to_status, 95).as_secs_f64(),
    );
    Ok(())
}
