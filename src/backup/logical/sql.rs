//! The SQL text of the logical method: how each column is read into a chunk and how a
//! `LOAD DATA` statement turns it back into the same value.
//!
//! Names are quoted as identifiers, never interpolated raw; key bounds are integers. Both
//! sides run with `time_zone = '+00:00'` and utf8mb4, so temporal and text values read back
//! as what was written.

use super::model::{ColumnEncoding, ColumnSpec};
use super::plan::KeyRange;

/// `` `name` `` with backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `` `schema`.`table` ``.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// How a column of `data_type` (`information_schema.COLUMNS.DATA_TYPE`) is written.
pub fn encoding_for(data_type: &str) -> ColumnEncoding {
    match data_type.to_ascii_lowercase().as_str() {
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" | "vector" => {
            ColumnEncoding::Hex
        }
        "bit" => ColumnEncoding::Unsigned,
        "float" => ColumnEncoding::Float,
        _ => ColumnEncoding::Text,
    }
}

/// Whether a column is computed by the server (`information_schema.COLUMNS.EXTRA`), and so
/// neither dumped nor loaded. `DEFAULT_GENERATED` (an expression default) is a stored value.
pub fn is_generated(extra: &str) -> bool {
    let extra = extra.to_ascii_uppercase();
    extra.contains("VIRTUAL GENERATED") || extra.contains("STORED GENERATED")
}

/// Whether a primary-key column of `data_type` can be split into integer ranges.
pub fn is_integer(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

fn select_expression(column: &ColumnSpec) -> String {
    let name = quote_ident(&column.name);
    match column.encoding {
        ColumnEncoding::Text => name,
        ColumnEncoding::Hex => format!("HEX({name})"),
        ColumnEncoding::Unsigned => format!("CAST({name} AS UNSIGNED)"),
        ColumnEncoding::Float => format!("CAST({name} AS DOUBLE)"),
    }
}

/// What a dump worker reads: the columns of one key range (or the whole table), in
/// primary-key order when there is one.
pub fn select_rows(
    schema: &str,
    table: &str,
    columns: &[ColumnSpec],
    primary_key: &[String],
    range: Option<KeyRange>,
) -> String {
    let list = columns
        .iter()
        .map(select_expression)
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!("SELECT {list} FROM {}", qualified(schema, table));
    if let (Some(range), [key]) = (range, primary_key) {
        let key = quote_ident(key);
        let bounds: Vec<String> = [
            range.lower.map(|l| format!("{key} >= {l}")),
            range.upper.map(|u| format!("{key} < {u}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !bounds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&bounds.join(" AND "));
        }
    }
    if !primary_key.is_empty() {
        let order: Vec<String> = primary_key.iter().map(|k| quote_ident(k)).collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&order.join(", "));
    }
    sql
}

/// The `LOAD DATA LOCAL INFILE` statement for one chunk of `table`. Hex and BIT columns go
/// through a user variable and are converted back in `SET`.
pub fn load_data(schema: &str, table: &str, columns: &[ColumnSpec]) -> String {
    let mut targets = Vec::with_capacity(columns.len());
    let mut sets = Vec::new();
    for (index, column) in columns.iter().enumerate() {
        let name = quote_ident(&column.name);
        match column.encoding {
            ColumnEncoding::Text | ColumnEncoding::Float => targets.push(name),
            ColumnEncoding::Hex => {
                targets.push(format!("@c{index}"));
                sets.push(format!("{name} = UNHEX(@c{index})"));
            }
            ColumnEncoding::Unsigned => {
                targets.push(format!("@c{index}"));
                sets.push(format!("{name} = CAST(@c{index} AS UNSIGNED)"));
            }
        }
    }
    let mut sql = format!(
        "LOAD DATA LOCAL INFILE 'chunk.tsv' INTO TABLE {} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        qualified(schema, table),
        targets.join(", ")
    );
    if !sets.is_empty() {
        sql.push_str(" SET ");
        sql.push_str(&sets.join(", "));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, encoding: ColumnEncoding) -> ColumnSpec {
        ColumnSpec {
            name: name.to_owned(),
            encoding,
        }
    }

    #[test]
    fn quotes_hostile_identifiers() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(qualified("s", "t`; DROP"), "`s`.`t``; DROP`");
    }

    #[test]
    fn classifies_columns() {
        assert_eq!(encoding_for("VARBINARY"), ColumnEncoding::Hex);
        assert_eq!(encoding_for("longblob"), ColumnEncoding::Hex);
        assert_eq!(encoding_for("bit"), ColumnEncoding::Unsigned);
        assert_eq!(encoding_for("float"), ColumnEncoding::Float);
        assert_eq!(encoding_for("double"), ColumnEncoding::Text);
        assert_eq!(encoding_for("json"), ColumnEncoding::Text);
        assert_eq!(encoding_for("decimal"), ColumnEncoding::Text);
        assert!(is_generated("VIRTUAL GENERATED"));
        assert!(is_generated("STORED GENERATED"));
        assert!(!is_generated("DEFAULT_GENERATED"));
        assert!(!is_generated("auto_increment"));
        assert!(is_integer("bigint") && !is_integer("decimal"));
    }

    #[test]
    fn selects_a_range_in_key_order() {
        let columns = [
            col("id", ColumnEncoding::Text),
            col("b", ColumnEncoding::Hex),
            col("f", ColumnEncoding::Unsigned),
        ];
        let range = KeyRange {
            lower: Some(-5),
            upper: Some(10),
        };
        assert_eq!(
            select_rows("s", "t", &columns, &["id".into()], Some(range)),
            "SELECT `id`, HEX(`b`), CAST(`f` AS UNSIGNED) FROM `s`.`t` \
             WHERE `id` >= -5 AND `id` < 10 ORDER BY `id`"
        );
        assert_eq!(
            select_rows("s", "t", &columns[..1], &["a".into(), "b".into()], None),
            "SELECT `id` FROM `s`.`t` ORDER BY `a`, `b`"
        );
        assert_eq!(
            select_rows("s", "t", &columns[..1], &[], None),
            "SELECT `id` FROM `s`.`t`"
        );
    }

    #[test]
    fn loads_through_variables() {
        let columns = [
            col("id", ColumnEncoding::Text),
            col("b", ColumnEncoding::Hex),
            col("f", ColumnEncoding::Unsigned),
        ];
        assert_eq!(
            load_data("s", "t", &columns),
            "LOAD DATA LOCAL INFILE 'chunk.tsv' INTO TABLE `s`.`t` CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
             (`id`, @c1, @c2) SET `b` = UNHEX(@c1), `f` = CAST(@c2 AS UNSIGNED)"
        );
    }
}
