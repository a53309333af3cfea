//! The post-failover hook as an external command (DNS, proxies), like orchestrator's
//! post-failover processes. Runs in the background with a timeout; never blocks the loop.

use std::process::Stdio;
use std::time::Duration;

use crate::control::{FailoverHook, HookInfo};

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
