//! The `lint.shipstream.io/exempt` annotation: `"<ruleId>: <reason>[; <ruleId>: <reason>]"`.

use serde_json::Value;

/// The annotation that exempts an object from rules.
pub const EXEMPT_ANNOTATION: &str = "lint.shipstream.io/exempt";

/// One parsed entry of the annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub rule_id: String,
    pub reason: String,
}

/// A part of the annotation that is not `<ruleId>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedEntry {
    pub entry: String,
    pub problem: &'static str,
}

/// Parses the object's exemption annotation. Entries without a reason are malformed and
/// exempt nothing: an exemption nobody can explain is not an exemption.
pub fn parse(object: &Value) -> (Vec<Exemption>, Vec<MalformedEntry>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let Some(text) = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(EXEMPT_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return (ok, bad);
    };
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once(':') {
            Some((id, reason)) if !reason.trim().is_empty() && !id.trim().is_empty() => {
                ok.push(Exemption {
                    rule_id: id.trim().to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
            Some((id, _)) if !id.trim().is_empty() => bad.push(MalformedEntry {
                entry: entry.to_owned(),
                problem: "has no reason",
            }),
            None if entry.starts_with("BR-") && !entry.contains(char::is_whitespace) => {
                bad.push(MalformedEntry {
                    entry: entry.to_owned(),
                    problem: "has no reason",
                });
            }
            _ => bad.push(MalformedEntry {
                entry: entry.to_owned(),
                problem: "is not `<ruleId>: <reason>`",
            }),
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_entries_and_requires_reasons() {
        let o = json!({"metadata": {"annotations": {EXEMPT_ANNOTATION:
            "BR-TLS-001: dev cluster; BR-IMG-001 ; BR-X:   ; nonsense"}}});
        let (ok, bad) = parse(&o);
        assert_eq!(
            ok,
            vec![Exemption {
                rule_id: "BR-TLS-001".into(),
                reason: "dev cluster".into()
            }]
        );
        assert_eq!(bad.len(), 3);
        assert_eq!(bad[0].problem, "has no reason");
        assert_eq!(bad[1].problem, "has no reason");
        assert_eq!(bad[2].problem, "is not `<ruleId>: <reason>`");
    }
}
