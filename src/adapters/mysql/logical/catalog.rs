//! Reading what a dump contains: user schemas, their tables (columns, primary key, size
//! estimate) and the DDL of every object.
//!
//! Read on the dump's control connection, which holds `LOCK INSTANCE FOR BACKUP`, so no DDL
//! can change any of it between this read and the end of the dump.

use mysql_async::Row;

use super::link::Link;
use super::{LogicalError, SYSTEM_SCHEMAS};
use crate::backup::logical::plan::DdlKind;
use crate::backup::logical::sql::{encoding_for, is_generated, is_integer, qualified, quote_ident};
use crate::backup::logical::{ColumnSpec, SchemaFilter};

/// One user schema as it is at the snapshot.
pub(super) struct SchemaInfo {
    pub name: String,
    pub create: String,
    pub tables: Vec<TableInfo>,
    /// Views, routines, triggers and events, in the order they are read.
    pub objects: Vec<ObjectInfo>,
}

pub(super) struct TableInfo {
    pub name: String,
    pub create: String,
    pub columns: Vec<ColumnSpec>,
    pub primary_key: Vec<String>,
    /// The primary key is one integer column, so the table can be split by key range.
    pub integer_key: bool,
    /// InnoDB's estimate of the table's size.
    pub estimated_bytes: u64,
}

pub(super) struct ObjectInfo {
    pub kind: DdlKind,
    pub name: String,
    pub create: String,
    pub sql_mode: Option<String>,
    pub time_zone: Option<String>,
}

fn text(row: &Row, index: usize) -> Option<String> {
    row.get_opt::<Option<String>, usize>(index)
        .and_then(Result::ok)
        .flatten()
}

fn required(row: &Row, index: usize, context: &str, address: &str) -> Result<String, LogicalError> {
    text(row, index).ok_or_else(|| LogicalError::Server {
        address: address.to_owned(),
        context: context.to_owned(),
        code: 0,
        message: format!(
            "column {index} is missing or NULL (does the account lack privileges on the object?)"
        ),
    })
}

/// The user schemas `filter` takes, read inside the snapshot.
pub(super) async fn read(
    link: &mut Link,
    filter: &SchemaFilter,
) -> Result<Vec<SchemaInfo>, LogicalError> {
    let names: Vec<String> = link
        .all(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
            "list schemas",
        )
        .await?;
    let user: Vec<String> = names
        .into_iter()
        .filter(|name| !SYSTEM_SCHEMAS.contains(&name.as_str()))
        .collect();
    filter.check(&user).map_err(LogicalError::Options)?;
    let mut schemas = Vec::new();
    for name in user {
        if filter.takes(&name) {
            schemas.push(read_schema(link, name).await?);
        }
    }
    Ok(schemas)
}

async fn read_schema(link: &mut Link, name: String) -> Result<SchemaInfo, LogicalError> {
    let address = link.address().to_owned();
    let context = format!("read schema {}", quote_ident(&name));
    let create_row: Option<Row> = link
        .first(
            &format!("SHOW CREATE DATABASE {}", quote_ident(&name)),
            &context,
        )
        .await?;
    let create = create_row
        .as_ref()
        .map(|row| required(row, 1, &context, &address))
        .transpose()?
        .unwrap_or_default();

    let listed: Vec<(String, String, u64)> = link
        .all_with(
            "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (name.clone(),),
            &context,
        )
        .await?;
    let columns: Vec<(String, String, String, String)> = link
        .all_with(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (name.clone(),),
            &context,
        )
        .await?;
    let keys: Vec<(String, String)> = link
        .all_with(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX",
            (name.clone(),),
            &context,
        )
        .await?;

    let mut tables = Vec::new();
    let mut objects = Vec::new();
    for (table, kind, estimated_bytes) in listed {
        let qualified_name = qualified(&name, &table);
        match kind.as_str() {
            "BASE TABLE" => {
                let context = format!("read table {qualified_name}");
                let row: Option<Row> = link
                    .first(&format!("SHOW CREATE TABLE {qualified_name}"), &context)
                    .await?;
                let create = row
                    .as_ref()
                    .map(|row| required(row, 1, &context, &address))
                    .transpose()?
                    .unwrap_or_default();
                let (table_columns, primary_key, integer_key) =
                    table_shape(&table, &columns, &keys);
                tables.push(TableInfo {
                    name: table,
                    create,
                    columns: table_columns,
                    primary_key,
                    integer_key,
                    estimated_bytes,
                });
            }
            "VIEW" => {
                let context = format!("read view {qualified_name}");
                let row: Option<Row> = link
                    .first(&format!("SHOW CREATE VIEW {qualified_name}"), &context)
                    .await?;
                if let Some(row) = row {
                    objects.push(ObjectInfo {
                        kind: DdlKind::View,
                        name: table,
                        create: required(&row, 1, &context, &address)?,
                        sql_mode: None,
                        time_zone: None,
                    });
                }
            }
            _ => {}
        }
    }
    read_routines_triggers_events(link, &name, &mut objects).await?;
    Ok(SchemaInfo {
        name,
        create,
        tables,
        objects,
    })
}

/// The dumped columns, the primary key and whether it is one integer column.
fn table_shape(
    table: &str,
    columns: &[(String, String, String, String)],
    keys: &[(String, String)],
) -> (Vec<ColumnSpec>, Vec<String>, bool) {
    let table_columns: Vec<ColumnSpec> = columns
        .iter()
        .filter(|(t, .., extra)| t == table && !is_generated(extra))
        .map(|(_, column, data_type, _)| ColumnSpec {
            name: column.clone(),
            encoding: encoding_for(data_type),
        })
        .collect();
    let primary_key: Vec<String> = keys
        .iter()
        .filter(|(t, _)| t == table)
        .map(|(_, c)| c.clone())
        .collect();
    let integer_key = match primary_key.as_slice() {
        [key] => columns
            .iter()
            .find(|(t, c, ..)| t == table && c == key)
            .is_some_and(|(_, _, data_type, _)| is_integer(data_type)),
        _ => false,
    };
    (table_columns, primary_key, integer_key)
}

async fn read_routines_triggers_events(
    link: &mut Link,
    schema: &str,
    objects: &mut Vec<ObjectInfo>,
) -> Result<(), LogicalError> {
    let address = link.address().to_owned();
    let context = format!("read routines of {}", quote_ident(schema));
    let routines: Vec<(String, String)> = link
        .all_with(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (schema.to_owned(),),
            &context,
        )
        .await?;
    for (name, routine_type) in routines {
        let kind = if routine_type == "FUNCTION" {
            DdlKind::Function
        } else {
            DdlKind::Procedure
        };
        let context = format!(
            "read {} {}",
            routine_type.to_lowercase(),
            qualified(schema, &name)
        );
        let sql = format!("SHOW CREATE {routine_type} {}", qualified(schema, &name));
        // Procedure|Function, sql_mode, Create …, character_set_client, …
        if let Some(row) = link.first::<Row>(&sql, &context).await? {
            objects.push(ObjectInfo {
                kind,
                name,
                sql_mode: text(&row, 1),
                create: required(&row, 2, &context, &address)?,
                time_zone: None,
            });
        }
    }

    let triggers: Vec<String> = link
        .all_with(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            (schema.to_owned(),),
            &context,
        )
        .await?;
    for name in triggers {
        let context = format!("read trigger {}", qualified(schema, &name));
        let sql = format!("SHOW CREATE TRIGGER {}", qualified(schema, &name));
        // Trigger, sql_mode, SQL Original Statement, …
        if let Some(row) = link.first::<Row>(&sql, &context).await? {
            objects.push(ObjectInfo {
                kind: DdlKind::Trigger,
                name,
                sql_mode: text(&row, 1),
                create: required(&row, 2, &context, &address)?,
                time_zone: None,
            });
        }
    }

    let events: Vec<String> = link
        .all_with(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? \
             ORDER BY EVENT_NAME",
            (schema.to_owned(),),
            &context,
        )
        .await?;
    for name in events {
        let context = format!("read event {}", qualified(schema, &name));
        let sql = format!("SHOW CREATE EVENT {}", qualified(schema, &name));
        // Event, sql_mode, time_zone, Create Event, …
        if let Some(row) = link.first::<Row>(&sql, &context).await? {
            objects.push(ObjectInfo {
                kind: DdlKind::Event,
                name,
                sql_mode: text(&row, 1),
                time_zone: text(&row, 2),
                create: required(&row, 3, &context, &address)?,
            });
        }
    }
    Ok(())
}
