//! Which user schemas a logical dump takes: a backup profile's `dump.includeSchemas` and
//! `dump.excludeSchemas` (the original's mysqlsh `includeSchemas`/`excludeSchemas`).
//!
//! A named schema the server does not have is an error, not an empty dump: a typo in an
//! include list would otherwise leave a tenant out of every backup without a word.

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
        let missing: Vec<&str> = self
            .include
            .iter()
            .chain(&self.exclude)
            .filter(|name| !user_schemas.contains(name))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "includeSchemas/excludeSchemas name schemas that are not user schemas on the server: {}",
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
}
