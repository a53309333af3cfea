//! A small catalog and a report that exercises every case a renderer must handle: active
//! and suppressed findings (both sources), stdin, in-memory objects without a file or a
//! name, parse errors, skipped kinds and markup characters in messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::manifest::{Location, ParseError};
use crate::policy::rules::{
    Catalog, Finding, Level, ObjectRef, Report, Summary, Suppression, SuppressionSource,
};

pub const RULE_FILES: &[(&str, &str)] = &[
    (
        "BR-TEST-001.yaml",
        "id: BR-TEST-001\ntitle: TLS is configured\nlevel: required\nowner: security\n\
         section: TLS\nkinds: [MysqlFailoverGroup]\nmessage: TLS is not configured\n\
         remediation: Set spec.tls.issuerRef to a cert-manager issuer.\n\
         check:\n  select: /spec\n  schema: {required: [tls]}\n",
    ),
    (
        "BR-TEST-002.yaml",
        "id: BR-TEST-002\ntitle: Metrics are scraped\nlevel: recommended\nowner: platform\n\
         section: Observability\nkinds: [MysqlFailoverGroup, Deployment]\n\
         message: 'monitoring is {value}'\nremediation: Add a PodMonitor.\n\
         check:\n  select: /spec\n  schema: {required: [monitoring]}\n",
    ),
    (
        "BR-TEST-003.yaml",
        "id: BR-TEST-003\ntitle: PITR <when> RPO & \"needs\" it\nlevel: environment-specific\n\
         owner: database\nsection: Backups\nkinds: [MysqlFailoverGroup]\n\
         message: PITR is off\nremediation: Enable spec.backup.pitr.\n\
         check:\n  select: /spec\n  schema: {required: [backup]}\n",
    ),
];

pub fn catalog() -> Arc<Catalog> {
    match Catalog::from_files(RULE_FILES) {
        Ok(c) => Arc::new(c),
        Err(e) => unreachable!("test catalog must load: {e}"),
    }
}

fn mfg(namespace: Option<&str>, name: Option<&str>) -> ObjectRef {
    ObjectRef {
        api_version: "shipstream.io/v1alpha1".into(),
        kind: "MysqlFailoverGroup".into(),
        namespace: namespace.map(Into::into),
        name: name.map(Into::into),
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    rule: &str,
    level: Level,
    object: ObjectRef,
    path: &str,
    message: &str,
    file: Option<&str>,
    line: Option<u32>,
    suppressed: Option<(SuppressionSource, &str)>,
) -> Finding {
    let remediation = match rule {
        "BR-TEST-001" => "Set spec.tls.issuerRef to a cert-manager issuer.",
        "BR-TEST-002" => "Add a PodMonitor.",
        _ => "Enable spec.backup.pitr.",
    };
    Finding {
        rule_id: rule.into(),
        level,
        object: object.into(),
        path: path.into(),
        message: message.into(),
        remediation: remediation.into(),
        file: file.map(Into::into),
        line,
        suppressed: suppressed.map(|(source, reason)| Suppression {
            source,
            reason: reason.into(),
        }),
    }
}

fn parse_error(file: &str, line: u32, column: u32, message: &str) -> ParseError {
    ParseError {
        location: Location {
            file: Some(Arc::from(file)),
            line,
            column,
        },
        message: message.into(),
    }
}

pub fn report() -> Report {
    let prod = mfg(Some("prod"), Some("db"));
    let findings = vec![
        finding(
            "BR-TEST-001",
            Level::Required,
            prod.clone(),
            "/spec/tls",
            "TLS is not configured",
            Some("deploy/prod.yaml"),
            Some(12),
            None,
        ),
        finding(
            "BR-TEST-003",
            Level::EnvironmentSpecific,
            prod.clone(),
            "/spec/backup/pitr",
            r#"PITR <disabled> & "binlogs" aren't kept"#,
            Some("deploy/prod.yaml"),
            Some(20),
            None,
        ),
        finding(
            "BR-TEST-002",
            Level::Recommended,
            prod,
            "",
            "monitoring is <unset>",
            Some("deploy/prod.yaml"),
            Some(1),
            Some((
                SuppressionSource::Annotation,
                "scraped by the platform agent",
            )),
        ),
        finding(
            "BR-TEST-001",
            Level::Required,
            mfg(Some("dev"), Some("db")),
            "/spec/tls",
            "TLS is not configured",
            Some("deploy/dev.yaml"),
            Some(5),
            Some((SuppressionSource::Config, "dev namespace")),
        ),
        finding(
            "BR-TEST-001",
            Level::Required,
            mfg(Some("piped"), Some("from-stdin")),
            "/spec/tls",
            "TLS is not configured",
            Some("-"),
            Some(4),
            None,
        ),
        finding(
            "BR-TEST-002",
            Level::Recommended,
            mfg(None, None),
            "/spec/monitoring",
            "monitoring is <unset>",
            None,
            None,
            None,
        ),
    ];
    Report {
        findings,
        parse_errors: vec![
            parse_error("broken.yaml", 3, 7, "did not find expected key <&>\"'"),
            parse_error("-", 1, 1, "unexpected end of stream"),
        ],
        summary: Summary {
            documents: 6,
            objects_checked: 4,
            objects_skipped: 2,
            skipped_kinds: BTreeMap::from([("ConfigMap".into(), 1), ("Service".into(), 1)]),
            parse_errors: 2,
            findings: BTreeMap::from([
                (Level::Required, 2),
                (Level::EnvironmentSpecific, 1),
                (Level::Recommended, 1),
            ]),
            suppressed: 2,
        },
    }
}
