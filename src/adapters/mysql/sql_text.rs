//! Building the few statements MySQL will not take placeholders in (CREATE USER, GRANT,
//! CHANGE REPLICATION SOURCE, CLONE INSTANCE) without letting a user name, host or password
//! change their meaning.
//!
//! Sessions that use these run with `NO_BACKSLASH_ESCAPES` removed from `sql_mode` (see
//! [`super::session::Session::ensure_backslash_escapes`]), so the escaping below is exact.

/// A MySQL string literal: `'…'` with quotes, backslashes and control bytes escaped.
pub(super) fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// `'user'@'host'`.
pub(super) fn account(user: &str, host: &str) -> String {
    format!("{}@{}", string_literal(user), string_literal(host))
}

/// A GTID set or `host:port` list is interpolated only after this check, as a literal.
pub(super) fn is_plain_token(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | ',' | '.' | '_' | '[' | ']'))
}

/// `CHANGE REPLICATION SOURCE TO …` with GTID auto-positioning.
pub(super) fn change_source(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    tls: bool,
) -> String {
    let mut sql = format!(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST={}, SOURCE_PORT={port}, SOURCE_USER={}, \
         SOURCE_PASSWORD={}, SOURCE_AUTO_POSITION=1",
        string_literal(host),
        string_literal(user),
        string_literal(password),
    );
    // Retry the source every second, for a day: a replica whose source is down for a moment
    // must reconnect quickly (the default is every 60 s, and only 10 times).
    sql.push_str(", SOURCE_CONNECT_RETRY=1, SOURCE_RETRY_COUNT=86400");
    if tls {
        sql.push_str(", SOURCE_SSL=1");
    } else {
        sql.push_str(", SOURCE_SSL=0, GET_SOURCE_PUBLIC_KEY=1");
    }
    sql
}

/// `CLONE INSTANCE FROM 'user'@'host':port IDENTIFIED BY '…' REQUIRE [NO] SSL`.
pub(super) fn clone_instance(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    tls: bool,
) -> String {
    format!(
        "CLONE INSTANCE FROM {}:{port} IDENTIFIED BY {} REQUIRE {}SSL",
        account(user, host),
        string_literal(password),
        if tls { "" } else { "NO " }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_cannot_escape_the_literal() {
        assert_eq!(string_literal("plain"), "'plain'");
        assert_eq!(string_literal("it's"), "'it\\'s'");
        assert_eq!(
            string_literal("a\\'; DROP USER x; --"),
            "'a\\\\\\'; DROP USER x; --'"
        );
        assert_eq!(string_literal("nul\0nl\n"), "'nul\\0nl\\n'");
    }

    #[test]
    fn every_quote_in_a_literal_is_escaped() {
        let hostile = "'\\''\\\\'''";
        let lit = string_literal(hostile);
        let inner = &lit[1..lit.len() - 1];
        // Walk the literal as MySQL does: a quote is only allowed right after a backslash.
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                assert_ne!(c, '\'', "unescaped quote in {lit}");
            }
        }
        assert!(!escaped, "dangling backslash in {lit}");
    }

    #[test]
    fn change_source_uses_ssl_or_public_key() {
        let ssl = change_source("10.0.0.1", 3306, "repl", "pw", true);
        assert!(ssl.contains("SOURCE_SSL=1") && !ssl.contains("GET_SOURCE_PUBLIC_KEY"));
        assert!(ssl.contains("SOURCE_AUTO_POSITION=1"));
        let plain = change_source("10.0.0.1", 3306, "repl", "pw", false);
        assert!(plain.contains("GET_SOURCE_PUBLIC_KEY=1") && plain.contains("SOURCE_SSL=0"));
    }

    #[test]
    fn clone_statement_quotes_account_and_password() {
        let sql = clone_instance("h", 3306, "re'pl", "p'w", true);
        assert_eq!(
            sql,
            "CLONE INSTANCE FROM 're\\'pl'@'h':3306 IDENTIFIED BY 'p\\'w' REQUIRE SSL"
        );
    }

    #[test]
    fn plain_tokens_reject_quotes() {
        assert!(is_plain_token(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,abc:tag:1"
        ));
        assert!(is_plain_token("127.0.0.1:3306"));
        assert!(!is_plain_token("x' OR '1"));
        assert!(!is_plain_token("a b"));
    }
}
