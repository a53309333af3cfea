//! The per-role MySQL accounts (`CredentialsSpec`: operator, app, read-only, monitor and
//! backup, plus replication; each role's grants are in `grants` below), created
//! idempotently: a missing user is created, an existing one gets the current password and its grants.
//! Run on the writable primary; the accounts replicate.

use super::client::MysqlSiteClient;
use super::config::Credentials;
use super::sql_text;
use crate::ports::mysql::DbError;

/// The accounts to create or update; `None` leaves a role alone.
#[derive(Debug, Clone)]
pub struct RoleUsers {
    /// Host part of every account (`%` unless the network is known).
    pub host: String,
    pub operator: Option<Credentials>,
    pub app: Option<Credentials>,
    pub read_only: Option<Credentials>,
    pub monitor: Option<Credentials>,
    pub backup: Option<Credentials>,
    pub replication: Option<Credentials>,
}

impl Default for RoleUsers {
    fn default() -> Self {
        Self {
            host: "%".to_owned(),
            operator: None,
            app: None,
            read_only: None,
            monitor: None,
            backup: None,
            replication: None,
        }
    }
}

/// The grants of one role: statements with `{account}` standing for `'user'@'host'`.
fn grants(role: Role) -> &'static [&'static str] {
    match role {
        Role::Operator => &["GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION"],
        // "ALL PRIVILEGES, no GRANT OPTION/SUPER". In MySQL 8+ `ALL ON *.*` also carries the
        // dynamic admin privileges (SYSTEM_VARIABLES_ADMIN could lift super_read_only, i.e.
        // unfence), so the application gets the static data and schema privileges instead.
        Role::App => &[
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, \
             CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, \
             CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER ON *.* TO {account}",
        ],
        Role::ReadOnly => &["GRANT SELECT, SHOW VIEW, SHOW DATABASES, PROCESS ON *.* TO {account}"],
        Role::Monitor => &[
            "GRANT PROCESS, REPLICATION CLIENT ON *.* TO {account}",
            "GRANT SELECT ON performance_schema.* TO {account}",
        ],
        Role::Backup => &[
            "GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, RELOAD, BACKUP_ADMIN, \
             REPLICATION CLIENT ON *.* TO {account}",
        ],
        // A replica's I/O thread needs REPLICATION SLAVE; a clone donor needs BACKUP_ADMIN.
        Role::Replication => &[
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN, CLONE_ADMIN ON *.* \
             TO {account}",
        ],
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Operator,
    App,
    ReadOnly,
    Monitor,
    Backup,
    Replication,
}

/// The statements that bring one account to its wanted state.
fn account_statements(role: Role, credentials: &Credentials, host: &str) -> Vec<String> {
    let account = sql_text::account(&credentials.user, host);
    let password = sql_text::string_literal(&credentials.password);
    let mut statements = vec![
        format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password}"),
        format!("ALTER USER {account} IDENTIFIED BY {password}"),
    ];
    statements.extend(
        grants(role)
            .iter()
            .map(|grant| grant.replace("{account}", &account)),
    );
    statements
}

pub(super) async fn create_role_users(
    client: &MysqlSiteClient,
    users: &RoleUsers,
) -> Result<(), DbError> {
    let roles = [
        (Role::Operator, &users.operator),
        (Role::App, &users.app),
        (Role::ReadOnly, &users.read_only),
        (Role::Monitor, &users.monitor),
        (Role::Backup, &users.backup),
        (Role::Replication, &users.replication),
    ];
    let mut session = client.op_session("create_role_users").await?;
    session.ensure_backslash_escapes().await?;
    for (role, credentials) in roles {
        let Some(credentials) = credentials else {
            continue;
        };
        if credentials.user.is_empty() || credentials.user.chars().count() > 32 {
            return Err(
                session.unsafe_error(format!("{role:?} user name must be 1 to 32 characters"))
            );
        }
        for statement in account_statements(role, credentials, &users.host) {
            session.exec(&statement).await?;
        }
        tracing::info!(role = ?role, "role user ensured");
    }
    session.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_the_account_and_password() {
        let statements = account_statements(Role::Monitor, &Credentials::new("mon'x", "p'w"), "%");
        assert_eq!(
            statements.first().map(String::as_str),
            Some("CREATE USER IF NOT EXISTS 'mon\\'x'@'%' IDENTIFIED BY 'p\\'w'")
        );
        assert!(statements.iter().all(|s| !s.contains("{account}")));
        assert_eq!(statements.len(), 4);
    }

    #[test]
    fn app_role_cannot_lift_the_fence() {
        let statements = account_statements(Role::App, &Credentials::new("app", "x"), "%");
        let text = statements.join(";");
        assert!(!text.contains("ALL PRIVILEGES"));
        assert!(!text.contains("SUPER") && !text.contains("ADMIN"));
        assert!(!text.contains("GRANT OPTION"));
    }
}
