//! Creating what is not a table: routines, views, triggers and events, plus the GTID
//! history between triggers and events (see [`super::load`] for the order).

use super::link::Link;
use super::load::fetch_text;
use super::{GtidHistory, LoadOptions, LogicalError, compact_gtids};
use crate::backup::logical::sql::{qualified, quote_ident};
use crate::backup::logical::{DdlObject, LogicalDump};
use crate::ports::artifacts::ArtifactSource;

/// Server errors that mean "something this view reads does not exist yet".
const MISSING_DEPENDENCY: [u16; 4] = [
    1146, // ER_NO_SUCH_TABLE
    1356, // ER_VIEW_INVALID
    1305, // ER_SP_DOES_NOT_EXIST
    1049, // ER_BAD_DB_ERROR
];

const LOAD_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO";

pub(super) async fn create_objects(
    control: &mut Link,
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
) -> Result<(), LogicalError> {
    for schema in &dump.schemas {
        for routine in &schema.routines {
            create(control, source, options, &schema.name, routine, "routine").await?;
        }
    }
    create_views(control, source, dump, options).await?;
    for schema in &dump.schemas {
        for trigger in &schema.triggers {
            create(control, source, options, &schema.name, trigger, "trigger").await?;
        }
    }
    if options.history != GtidHistory::Own {
        set_gtid_purged(control, &dump.gtid_executed).await?;
    }
    for schema in &dump.schemas {
        for event in &schema.events {
            create(control, source, options, &schema.name, event, "event").await?;
        }
    }
    Ok(())
}

/// Creates one object in its schema, under the `sql_mode` (and time zone) it was created
/// with, then puts the load's session back.
async fn create(
    control: &mut Link,
    source: &dyn ArtifactSource,
    options: &LoadOptions,
    schema: &str,
    object: &DdlObject,
    what: &str,
) -> Result<(), LogicalError> {
    let context = format!("load: create {what} {}", qualified(schema, &object.name));
    let sql = fetch_text(source, &object.artifact, options, &context).await?;
    control
        .exec(&format!("USE {}", quote_ident(schema)), &context)
        .await?;
    let mut settings = Vec::new();
    if let Some(mode) = &object.sql_mode {
        settings.push(format!("SESSION sql_mode = {}", literal(mode)));
    }
    if let Some(zone) = &object.time_zone {
        settings.push(format!("SESSION time_zone = {}", literal(zone)));
    }
    if !settings.is_empty() {
        control
            .exec(&format!("SET {}", settings.join(", ")), &context)
            .await?;
    }
    let created = control.exec(&sql, &context).await;
    if !settings.is_empty() {
        control
            .exec(
                &format!("SET SESSION sql_mode = '{LOAD_SQL_MODE}', SESSION time_zone = '+00:00'"),
                &context,
            )
            .await?;
    }
    created
}

/// Views in passes: a view whose dependencies are not there yet waits for the next pass;
/// a pass that creates nothing ends it with the errors of what is left.
async fn create_views(
    control: &mut Link,
    source: &dyn ArtifactSource,
    dump: &LogicalDump,
    options: &LoadOptions,
) -> Result<(), LogicalError> {
    let mut pending: Vec<(&str, &DdlObject)> = dump
        .schemas
        .iter()
        .flat_map(|s| s.views.iter().map(move |v| (s.name.as_str(), v)))
        .collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut last_error = None;
        for (schema, view) in pending.iter().copied() {
            match create(control, source, options, schema, view, "view").await {
                Ok(()) => {}
                Err(error)
                    if error
                        .server_code()
                        .is_some_and(|code| MISSING_DEPENDENCY.contains(&code)) =>
                {
                    waiting.push((schema, view));
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        if waiting.len() == pending.len() {
            // Nothing was created in this pass, so nothing will be in the next.
            if let Some(error) = last_error {
                return Err(error);
            }
        }
        pending = waiting;
    }
    Ok(())
}

async fn set_gtid_purged(control: &mut Link, gtid_set: &str) -> Result<(), LogicalError> {
    let gtid_set = compact_gtids(gtid_set);
    if gtid_set.is_empty() {
        return Ok(());
    }
    let context = "load: SET GLOBAL gtid_purged";
    let plain = gtid_set
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | ','));
    if !plain {
        return Err(LogicalError::Mismatch {
            context: context.to_owned(),
            message: format!("{gtid_set:?} is not a GTID set"),
        });
    }
    let now: Option<String> = control
        .first("SELECT @@GLOBAL.gtid_executed", context)
        .await?;
    if let Some(now) = now.map(|n| compact_gtids(&n)).filter(|n| !n.is_empty()) {
        return Err(LogicalError::Refused {
            address: control.address().to_owned(),
            reason: format!(
                "something wrote to the target during the load (gtid_executed is {now}); \
                 its history cannot be set to the dump's"
            ),
        });
    }
    control
        .exec(&format!("SET GLOBAL gtid_purged = '{gtid_set}'"), context)
        .await
}

/// A string literal for a session setting read from the dump (`sql_mode`, a time zone):
/// quotes and backslashes escaped, as the session keeps backslash escapes on.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
