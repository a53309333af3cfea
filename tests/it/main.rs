//! The integration test binary. One binary keeps link times down on small machines; each
//! area is a module.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup_cli;
mod backup_cli_schemas;
mod backup_logical;
mod backup_standalone;
mod backup_store;
mod bench_operator_rto;
mod bench_operator_scale;
mod chart;
mod compat_corpus;
mod failover_bootstrap;
mod failover_common;
mod failover_divergence;
mod failover_planned;
mod failover_standalone;
mod failover_unplanned;
// The playground's counter app, shared with the failover tests.
#[path = "../../examples/common/writer.rs"]
#[allow(dead_code)]
mod failover_writer;
mod generated;
mod kube_real_backup;
mod kube_real_backup_volume;
mod kube_real_certs;
mod kube_real_children;
mod kube_real_kubectl;
mod kube_real_lease;
mod kube_real_operator;
mod kube_real_pitr;
mod kube_real_pitr_volume;
mod kube_real_pitr_volume_restore;
mod kube_real_second_opinion;
mod kube_real_sidecar_api;
mod kube_real_status;
mod kube_watch;
mod lint_cli;
mod lint_cli_inputs;
mod lint_examples;
mod lint_policy;
mod lint_rules;
mod lint_vacant;
mod manifest_fuzz;
mod manifest_merge;
mod mysql_adapter;
mod mysql_harness;
mod mysql_wire;
mod render_golden;
mod render_mysqld;
mod render_tools;
mod report_sarif;
mod rule_forms;
mod serve_admission;
mod serve_fuzz;
mod serve_lint;
mod serve_lint_limits;
mod serve_metrics;
mod serve_support;
mod serve_tls;
mod serve_vacant;
mod serve_webhook_manifests;
mod sidecar;
mod sidecar_partition;
mod sidecar_second_opinion;
mod sidecar_support;
mod sim_campaign;
mod support;
