//! The post-failover hook as an external command (DNS, proxies), like orchestrator's
//! post-failover processes. Runs in the background with a timeout; never blocks the loop.

use std::process::Stdio;
use std::time::Duration;

use crate::ports::hook::{FailoverHook, HookInfo};

#[derive(Debug, Clone)]
pub struct CommandHook {
    command: Vec<String>,
    timeout: Duration,
}

impl CommandHook {
    pub fn new(command: Vec<String>, timeout: Duration) -> Self {
        Self { command, timeout }
    }
}

impl FailoverHook for CommandHook {
    fn fire(&self, info: HookInfo, on_failure: Box<dyn FnOnce() + Send>) {
        let Some((program, args)) = self.command.split_first() else {
            return;
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("BLOODRAVEN_NEW_PRIMARY_SITE", &info.new_primary_site)
            .env("BLOODRAVEN_NEW_PRIMARY_ADDRESS", &info.new_primary_address)
            .env(
                "BLOODRAVEN_OLD_PRIMARY_SITE",
                info.old_primary_site.as_deref().unwrap_or(""),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let timeout = self.timeout;
        let program = program.clone();
        tokio::spawn(async move {
            let site = info.new_primary_site;
            let child = match command.spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(site, program, error = %e, "failover hook could not start");
                    on_failure();
                    return;
                }
            };
            // On timeout the future (and with it the child, kill_on_drop) is dropped.
            match tokio::time::timeout(timeout, child.wait_with_output()).await {
                Ok(Ok(out)) if out.status.success() => {
                    tracing::info!(site, program, "failover hook succeeded");
                }
                Ok(Ok(out)) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    tracing::error!(site, program, status = %out.status, stderr = %stderr.trim_end(), "failover hook failed");
                    on_failure();
                }
                Ok(Err(e)) => {
                    tracing::error!(site, program, error = %e, "failover hook failed");
                    on_failure();
                }
                Err(_) => {
                    tracing::error!(
                        site,
                        program,
                        timeout_ms = timeout.as_millis(),
                        "failover hook timed out; killed"
                    );
                    on_failure();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn info() -> HookInfo {
        HookInfo {
            new_primary_site: "pdx".to_owned(),
            new_primary_address: "10.0.0.2:3306".to_owned(),
            old_primary_site: Some("iad".to_owned()),
        }
    }

    /// Fires `command` and returns how many failures were reported after `wait`.
    async fn failures_after(command: &[&str], timeout: Duration, wait: Duration) -> usize {
        let failures = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&failures);
        let hook = CommandHook::new(command.iter().map(|s| (*s).to_owned()).collect(), timeout);
        let started = std::time::Instant::now();
        hook.fire(
            info(),
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "fire must not wait for the hook"
        );
        tokio::time::sleep(wait).await;
        failures.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn success_failure_and_timeout_are_told_apart() {
        let ok = [
            "sh",
            "-c",
            "test \"$BLOODRAVEN_NEW_PRIMARY_SITE:$BLOODRAVEN_NEW_PRIMARY_ADDRESS:$BLOODRAVEN_OLD_PRIMARY_SITE\" = pdx:10.0.0.2:3306:iad",
        ];
        let second = Duration::from_secs(1);
        assert_eq!(
            failures_after(&ok, second, second).await,
            0,
            "env vars as documented"
        );
        assert_eq!(
            failures_after(&["sh", "-c", "exit 3"], second, second).await,
            1
        );
        assert_eq!(
            failures_after(&["sleep", "10"], Duration::from_millis(100), second).await,
            1,
            "a hung hook is killed at its timeout"
        );
        assert_eq!(
            failures_after(&["/nonexistent/hook"], second, Duration::from_millis(300)).await,
            1
        );
    }
}
