//! Staging tables and atomic swaps in MySQL: a job loads `<table>__staging`, checks
//! it, then `RENAME TABLE` swaps it in. The rename of several tables is atomic, so
//! readers see either the old or the new table, never a missing or half-filled one.
//! The staging table is created `LIKE` the real one, so the DDL (types, keys,
//! indexes) of infra/db is kept.

use anyhow::{Context, Result};
use sqlx::{AssertSqlSafe, Executor, MySqlPool};

pub fn staging_name(table: &str) -> String {
    format!("{table}__staging")
}

fn old_name(table: &str) -> String {
    format!("{table}__old")
}

/// Creates an empty staging copy of `table` (dropping a leftover of a failed run).
pub async fn prepare_staging(pool: &MySqlPool, table: &str) -> Result<String> {
    let staging = staging_name(table);
    let mut conn = pool.acquire().await?;
    conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{staging}`")))
        .await
        .with_context(|| format!("cannot drop the leftover staging table {staging}"))?;
    conn.execute(AssertSqlSafe(format!(
        "CREATE TABLE `{staging}` LIKE `{table}`"
    )))
    .await
    .with_context(|| {
        format!("cannot create staging table {staging} (does MySQL table {table} exist?)")
    })?;
    Ok(staging)
}

/// Swaps the staging table in, atomically, and drops the previous contents.
pub async fn swap_in(pool: &MySqlPool, table: &str) -> Result<()> {
    let staging = staging_name(table);
    let old = old_name(table);
    let mut conn = pool.acquire().await?;
    conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{old}`")))
        .await?;
    conn.execute(AssertSqlSafe(format!(
        "RENAME TABLE `{table}` TO `{old}`, `{staging}` TO `{table}`"
    )))
    .await
    .with_context(|| format!("cannot swap {staging} into {table}"))?;
    conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{old}`")))
        .await
        .with_context(|| format!("cannot drop {old}"))?;
    Ok(())
}

/// Removes a staging table after a failure, so nothing half-done stays visible.
pub async fn discard_staging(pool: &MySqlPool, table: &str) {
    let staging = staging_name(table);
    if let Err(e) = pool
        .execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{staging}`")))
        .await
    {
        tracing::warn!("could not drop staging table {staging}: {e}");
    }
}
