//! The mysql_async implementation of [`crate::ports::mysql::MysqlSite`].
