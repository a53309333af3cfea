//! Which backups a prune deletes.
