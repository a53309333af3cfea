//! Loading the catalog from the rule files embedded from `lint-rules/`.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use json_patch::PatchOperation;
use serde::Deserialize;
use serde_json::Value;

use super::builtin;
use super::condition::Condition;
use super::image;
use super::kinds;
use super::model::{AdmissionAction, Level, Owner, Rule};
use crate::error::{Categorized, Category};
use crate::policy::manifest::parse_stream;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/rule_files.rs"));
}

/// The file that lists checklist bullets no manifest can decide.
const MANUAL_FILE: &str = "_manual-checks.yaml";
/// The file that lists safe defaults the mutating webhook and `lint --fix` fill in.
const DEFAULTS_FILE: &str = "_defaults.yaml";

/// A rule file that does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lint-rules/{file}: {message}")]
pub struct CatalogError {
    pub file: String,
    pub message: String,
}

impl Categorized for CatalogError {
    fn category(&self) -> Category {
        Category::Config
    }
}

/// A checklist bullet that cannot be decided from manifests, with the reason.
#[derive(Debug, Clone, Deserialize)]
pub struct ManualCheck {
    pub section: String,
    pub item: String,
    pub reason: String,
}

/// A value filled in when a field is missing; never overwrites what the user set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SafeDefault {
    pub kinds: Vec<String>,
    /// Pointer pattern (with `*`) of the objects that get the field.
    pub select: String,
    pub field: String,
    pub value: Value,
    /// Why this default is safe, for the docs.
    pub why: String,
}

/// Every rule, in ID order, plus the checklist items left to humans and the safe defaults.
#[derive(Debug)]
pub struct Catalog {
    rules: Vec<Rule>,
    manual: Vec<ManualCheck>,
    defaults: Vec<SafeDefault>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleFile {
    id: String,
    title: String,
    level: Level,
    owner: Owner,
    section: String,
    kinds: Vec<String>,
    message: String,
    remediation: String,
    #[serde(default)]
    admission: AdmissionAction,
    check: CheckFile,
    #[serde(default)]
    fix: Option<Vec<PatchOperation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckFile {
    #[serde(default)]
    when: Option<Value>,
    #[serde(default)]
    select: Option<Selectors>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    builtin: Option<String>,
}

/// One pointer pattern or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Selectors {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualFile {
    manual: Vec<ManualCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    defaults: Vec<SafeDefault>,
}

impl Catalog {
    /// The catalog compiled into the binary. Loaded once; a broken rule file is a build
    /// defect that the test suite catches, so it is reported rather than half-loaded.
    pub fn builtin() -> Result<Arc<Catalog>, CatalogError> {
        static CATALOG: OnceLock<Result<Arc<Catalog>, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Catalog::from_files(embedded::RULE_FILES).map(Arc::new))
            .clone()
    }

    /// Builds a catalog from `(file name, YAML text)` pairs.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut rules = Vec::new();
        let mut manual = Vec::new();
        let mut defaults = Vec::new();
        let mut ids = BTreeSet::new();
        for (file, text) in files {
            let value = load_single(file, text)?;
            if *file == MANUAL_FILE {
                let parsed: ManualFile = serde_json::from_value(value).map_err(|e| err(file, e))?;
                manual = parsed.manual;
                continue;
            }
            if *file == DEFAULTS_FILE {
                let parsed: DefaultsFile =
                    serde_json::from_value(value).map_err(|e| err(file, e))?;
                defaults = parsed.defaults;
                continue;
            }
            let parsed: RuleFile = serde_json::from_value(value).map_err(|e| err(file, e))?;
            let rule = compile(file, parsed)?;
            if !ids.insert(rule.id.clone()) {
                return Err(err(file, format!("duplicate rule id {}", rule.id)));
            }
            rules.push(rule);
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Catalog {
            rules,
            manual,
            defaults,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| &*r.id == id)
    }

    pub fn manual_checks(&self) -> &[ManualCheck] {
        &self.manual
    }

    pub fn safe_defaults(&self) -> &[SafeDefault] {
        &self.defaults
    }

    /// Every kind some rule applies to.
    pub fn kinds(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| r.kinds.iter().map(String::as_str))
            .collect()
    }
}

#[allow(clippy::needless_pass_by_value)] // call sites pass temporaries of many types
fn err(file: &str, message: impl ToString) -> CatalogError {
    CatalogError {
        file: file.to_owned(),
        message: message.to_string(),
    }
}

fn load_single(file: &str, text: &str) -> Result<Value, CatalogError> {
    let mut stream = parse_stream(Some(file), text);
    if let Some(e) = stream.errors.first() {
        return Err(err(file, e));
    }
    match stream.documents.len() {
        1 => Ok(stream.documents.remove(0).value),
        n => Err(err(file, format!("expected one YAML document, found {n}"))),
    }
}

fn compile(file: &str, f: RuleFile) -> Result<Rule, CatalogError> {
    let id_ok = f.id.starts_with("BR-")
        && f.id.len() <= 24
        && f.id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(err(
            file,
            format!("rule id {:?} must look like BR-AREA-001", f.id),
        ));
    }
    if f.kinds.is_empty() {
        return Err(err(file, "kinds must not be empty"));
    }
    if let Some(unknown) = f.kinds.iter().find(|k| kinds::group_of(k).is_none()) {
        return Err(err(
            file,
            format!("kind {unknown:?} has no known API group (see src/engine/rules/kinds.rs)"),
        ));
    }
    let condition = match (f.check.builtin, f.check.schema) {
        (Some(name), None) => {
            if f.check.when.is_some() || f.check.select.is_some() {
                return Err(err(file, "a builtin check takes no when/select"));
            }
            let check = builtin::lookup(&name)
                .ok_or_else(|| err(file, format!("unknown builtin check {name:?}")))?;
            Condition::Builtin { name, check }
        }
        (None, Some(schema)) => Condition::Schema {
            when: f
                .check
                .when
                .as_ref()
                .map(|w| validator(file, "when", w))
                .transpose()?,
            select: match f.check.select {
                None => vec![String::new()],
                Some(Selectors::One(one)) => vec![one],
                Some(Selectors::Many(many)) if !many.is_empty() => many,
                Some(Selectors::Many(_)) => return Err(err(file, "check.select is empty")),
            },
            schema: validator(file, "schema", &schema)?,
        },
        _ => return Err(err(file, "check needs exactly one of schema and builtin")),
    };
    Ok(Rule {
        id: f.id.into(),
        title: f.title,
        level: f.level,
        owner: f.owner,
        kinds: f.kinds,
        section: f.section,
        message: f.message,
        remediation: f.remediation.into(),
        admission: f.admission,
        condition,
        fix: f.fix,
        source: file.to_owned(),
    })
}

fn validator(
    file: &str,
    what: &str,
    schema: &Value,
) -> Result<jsonschema::Validator, CatalogError> {
    jsonschema::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_format("immutable-image", image::is_immutable)
        .build(schema)
        .map_err(|e| {
            err(
                file,
                format!("check.{what} is not a valid JSON Schema: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_and_is_sorted() {
        let catalog = Catalog::builtin().expect("catalog");
        assert!(catalog.rules().len() >= 40, "{}", catalog.rules().len());
        let ids: Vec<&str> = catalog.rules().iter().map(|r| &*r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        assert!(!catalog.manual_checks().is_empty());
        assert_eq!(catalog.safe_defaults().len(), 3);
    }

    #[test]
    fn rejects_broken_rule_files() {
        let bad_id = "id: nope\ntitle: t\nlevel: required\nowner: app\nsection: s\nkinds: [Job]\nmessage: m\nremediation: r\ncheck: {schema: {}}\n";
        let e = Catalog::from_files(&[("a.yaml", bad_id)]).unwrap_err();
        assert!(e.message.contains("BR-AREA-001"), "{e}");
        let bad_builtin = bad_id
            .replace("id: nope", "id: BR-X-001")
            .replace("{schema: {}}", "{builtin: nope}");
        let e = Catalog::from_files(&[("a.yaml", &bad_builtin)]).unwrap_err();
        assert!(e.message.contains("unknown builtin"), "{e}");
        let bad_schema = bad_id
            .replace("id: nope", "id: BR-X-001")
            .replace("{schema: {}}", "{schema: {type: 12}}");
        let e = Catalog::from_files(&[("a.yaml", &bad_schema)]).unwrap_err();
        assert!(e.message.contains("not a valid JSON Schema"), "{e}");
        let unknown_field = bad_id
            .replace("id: nope", "id: BR-X-001")
            .replace("level:", "colour: red\nlevel:");
        assert!(Catalog::from_files(&[("a.yaml", &unknown_field)]).is_err());
        let unknown_kind = bad_id
            .replace("id: nope", "id: BR-X-001")
            .replace("[Job]", "[Widget]");
        let e = Catalog::from_files(&[("a.yaml", &unknown_kind)]).unwrap_err();
        assert!(e.message.contains("no known API group"), "{e}");
    }
}
