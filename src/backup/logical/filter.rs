//! Which user schemas a logical dump takes, or a restore loads: a backup profile's
//! `dump.includeSchemas`/`excludeSchemas` and a restore's `loadOptions` of the same names
//! (the original's mysqlsh filters).
//!
//! A named schema that is not there is an error, not an empty selection: a typo in an
//! include list would otherwise leave a tenant out of every backup, or restore nothing,
//! without a word.

use super::LogicalDump;

/// `include` (empty: every user schema) minus `exclude`. Names match exactly, as schema
/// names do on a server with the default `lower_case_table_names=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl SchemaFilter {
    /// Takes every user schema.
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the dump takes `schema`.
    pub fn takes(&self, schema: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|s| s == schema))
            && !self.exclude.iter().any(|s| s == schema)
    }

    /// Why the filter cannot apply to a server with these user schemas: names it gives
    /// that are not among them (a system schema is not one).
    pub fn check(&self, user_schemas: &[String]) -> Result<(), String> {
        self.check_among(user_schemas, "user schemas on the server")
    }

    /// `dump` cut down to the schemas the filter takes, for a restore of some of them.
    /// Every name must be a schema of the dump, and the selection must not be empty.
    pub fn select(&self, dump: &LogicalDump) -> Result<LogicalDump, String> {
        let names: Vec<String> = dump.schemas.iter().map(|s| s.name.clone()).collect();
        self.check_among(&names, "schemas of the backup")?;
        let mut selected = dump.clone();
        selected.schemas.retain(|schema| self.takes(&schema.name));
        if selected.schemas.is_empty() {
            return Err(format!(
                "includeSchemas/excludeSchemas leave none of the backup's schemas ({})",
                names.join(", ")
            ));
        }
        Ok(selected)
    }

    fn check_among(&self, present: &[String], what: &str) -> Result<(), String> {
        let missing: Vec<&str> = self
            .include
            .iter()
            .chain(&self.exclude)
            .filter(|name| !present.contains(name))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "includeSchemas/excludeSchemas name schemas that are not {what}: {}",
                missing.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn include_then_exclude_and_unknown_names_are_errors() {
        let all = SchemaFilter::default();
        assert!(all.is_everything());
        assert!(all.takes("shop"));
        let only = SchemaFilter {
            include: names(&["shop", "billing"]),
            exclude: names(&["billing"]),
        };
        assert!(only.takes("shop"));
        assert!(!only.takes("billing"), "exclude wins");
        assert!(!only.takes("other"));
        assert!(!only.takes("Shop"), "names match exactly");
        let but = SchemaFilter {
            include: Vec::new(),
            exclude: names(&["scratch"]),
        };
        assert!(but.takes("shop") && !but.takes("scratch"));
        let server = names(&["billing", "shop"]);
        assert!(only.check(&server).is_ok());
        let typo = SchemaFilter {
            include: names(&["shopp", "mysql"]),
            exclude: Vec::new(),
        };
        let e = typo.check(&server).expect_err("unknown names");
        assert!(e.contains("shopp") && e.contains("mysql"), "{e}");
    }

    fn dump_of(schemas: &[&str]) -> LogicalDump {
        let artifact = |key: &str| crate::ports::artifacts::StoredArtifact {
            key: key.to_owned(),
            plain_bytes: 1,
            stored_bytes: 1,
            sha256: String::new(),
        };
        LogicalDump {
            format_version: super::super::LOGICAL_FORMAT_VERSION,
            server_version: "9.7.0".into(),
            gtid_executed: String::new(),
            chunk_bytes: 1,
            schemas: schemas
                .iter()
                .map(|name| super::super::SchemaDump {
                    name: (*name).to_owned(),
                    ddl: artifact(&format!("ddl/{name}.sql")),
                    tables: Vec::new(),
                    views: Vec::new(),
                    routines: Vec::new(),
                    triggers: Vec::new(),
                    events: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_restore_selects_schemas_of_the_backup_and_never_none() {
        let dump = dump_of(&["billing", "shop", "tenant_a"]);
        let one = SchemaFilter {
            include: names(&["shop"]),
            exclude: Vec::new(),
        };
        let selected = one.select(&dump).expect("shop is in the backup");
        let kept: Vec<&str> = selected.schemas.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kept, ["shop"]);
        assert_eq!(selected.gtid_executed, dump.gtid_executed);
        let but = SchemaFilter {
            include: Vec::new(),
            exclude: names(&["billing"]),
        };
        let kept: Vec<String> = but
            .select(&dump)
            .expect("select")
            .schemas
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(kept, ["shop", "tenant_a"]);
        let typo = SchemaFilter {
            include: names(&["shopp"]),
            exclude: Vec::new(),
        };
        let e = typo.select(&dump).expect_err("not in the backup");
        assert!(
            e.contains("shopp") && e.contains("schemas of the backup"),
            "{e}"
        );
        let nothing = SchemaFilter {
            include: names(&["shop"]),
            exclude: names(&["shop"]),
        };
        let e = nothing.select(&dump).expect_err("empty selection");
        assert!(e.contains("leave none"), "{e}");
    }
}
