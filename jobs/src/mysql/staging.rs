//! Replacing a MySQL table with a verified copy: the one path every job that writes a
//! MySQL table goes through ([`TableLocks`], then [`replace`] per table).
//!
//! 1. A run first takes the named locks (`GET_LOCK`, held by a connection of its own
//!    until the run ends) of every table it writes or reads, waiting at most
//!    `--lock-wait-secs`: two runs never work on one table at the same time, the
//!    second waits (then reads the newer data) or fails with one clear line.
//! 2. Drop what crashed runs left (their staging tables), then create this run's
//!    staging table `<table>__stg_<run>` `LIKE` the table, so the DDL of infra/db
//!    (types, keys, indexes, collations) is kept.
//! 3. The job loads and verifies it.
//! 4. `RENAME TABLE` swaps it in atomically (readers see the old or the new table,
//!    never a missing or half-filled one), waiting at most `--swap-wait-secs` for
//!    readers that hold the table (`lock_wait_timeout`), so one long reader cannot
//!    stall the swap and every reader queued behind it.
//!
//! Any failure drops the staging table and leaves the table as it was. A process that
//! dies (kill -9) loses its connections, so MySQL releases its locks at once.

use std::future::Future;

use anyhow::{Context, Result, bail, ensure};
use common::MysqlSettings;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, MySqlPool};

/// How long a job waits for MySQL locks (shared by the jobs that swap tables).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LockArgs {
    /// Seconds to wait for another run that holds a table (its named lock)
    #[arg(long, env = "MYSQL_LOCK_WAIT_SECS", default_value_t = 300)]
    pub lock_wait_secs: u64,
    /// Seconds the swap waits for readers of the table to finish (lock_wait_timeout)
    #[arg(long, env = "MYSQL_SWAP_WAIT_SECS", default_value_t = 30)]
    pub swap_wait_secs: u64,
}

/// MySQL's name for the lock of a table of the platform's database. Named locks are
/// server-wide, so the database is part of the name (at most 64 characters).
pub fn lock_name(database: &str, table: &str) -> String {
    format!("finals.{database}.{table}")
        .chars()
        .take(64)
        .collect()
}

pub fn staging_name(table: &str, run: &str) -> String {
    format!("{table}__stg_{run}")
}

/// A connection holding the named locks of some tables, in a fixed order (sorted)
/// so that runs needing several locks never deadlock. Dropping it closes the
/// connection, which releases the locks.
pub struct TableLocks {
    conn: MySqlConnection,
    tables: Vec<String>,
}

impl TableLocks {
    pub async fn acquire(my: &MysqlSettings, tables: &[&str], args: LockArgs) -> Result<Self> {
        let mut conn = MySqlConnection::connect_with(&my.connect_options()?)
            .await
            .with_context(|| format!("cannot connect to {}", my.describe()))?;
        let mut sorted: Vec<&str> = tables.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for table in &sorted {
            let name = lock_name(&my.database, table);
            let (got,): (Option<i64>,) = sqlx::query_as("SELECT GET_LOCK(?, ?)")
                .bind(&name)
                .bind(args.lock_wait_secs as i64)
                .fetch_one(&mut conn)
                .await
                .with_context(|| format!("cannot take the lock of MySQL table {table}"))?;
            if got != Some(1) {
                bail!(
                    "MySQL table {table} is busy: another run has held it for more than {}s \
                     (lock {name}; raise MYSQL_LOCK_WAIT_SECS or wait for that run to end)",
                    args.lock_wait_secs
                );
            }
        }
        tracing::debug!(tables = ?sorted, "MySQL table locks taken");
        Ok(Self {
            conn,
            tables: sorted.into_iter().map(str::to_string).collect(),
        })
    }

    /// Releases the locks now (dropping does it too, by closing the connection).
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}

/// Replaces `table` (whose lock `locks` holds) with what `load` writes into the
/// staging table whose name it is given; `load` also verifies the copy and fails when
/// it is not right. Returns what `load` returned once the verified copy is swapped in.
pub async fn replace<T, F, Fut>(
    pool: &MySqlPool,
    locks: &TableLocks,
    table: &str,
    run: &str,
    args: LockArgs,
    load: F,
) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    ensure!(
        locks.tables.iter().any(|t| t == table),
        "internal error: MySQL table {table} replaced without its lock"
    );
    let mut conn = pool.acquire().await.context("cannot connect to MySQL")?;
    drop_leftovers(&mut conn, table).await?;
    let staging = staging_name(table, run);
    conn.execute(AssertSqlSafe(format!(
        "CREATE TABLE `{staging}` LIKE `{table}`"
    )))
    .await
    .with_context(|| {
        format!("cannot create staging table {staging} (does MySQL table {table} exist?)")
    })?;
    let result = match load(staging.clone()).await {
        Ok(report) => swap_in(&mut conn, table, &staging, run, args)
            .await
            .map(|()| report),
        Err(e) => Err(e),
    };
    if result.is_err()
        && let Err(e) = conn
            .execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{staging}`")))
            .await
    {
        tracing::warn!("could not drop staging table {staging}: {e}");
    }
    result
}

/// Staging and old tables of `table` that runs killed midway left behind. Only called
/// while holding the table's lock, so no live run is using them.
async fn drop_leftovers(conn: &mut MySqlConnection, table: &str) -> Result<()> {
    let escaped = table.replace('_', "\\_");
    let leftovers: Vec<(String,)> = sqlx::query_as(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND (TABLE_NAME LIKE ? OR TABLE_NAME LIKE ? OR TABLE_NAME IN (?, ?))",
    )
    .bind(format!("{escaped}\\_\\_stg\\_%"))
    .bind(format!("{escaped}\\_\\_old\\_%"))
    // the fixed names of earlier versions
    .bind(format!("{table}__staging"))
    .bind(format!("{table}__old"))
    .fetch_all(&mut *conn)
    .await
    .with_context(|| format!("cannot list leftover staging tables of {table}"))?;
    for (name,) in leftovers {
        tracing::info!(table, leftover = %name, "dropping what an interrupted run left");
        conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{name}`")))
            .await
            .with_context(|| format!("cannot drop leftover table {name}"))?;
    }
    Ok(())
}

async fn swap_in(
    conn: &mut MySqlConnection,
    table: &str,
    staging: &str,
    run: &str,
    args: LockArgs,
) -> Result<()> {
    let old = format!("{table}__old_{run}");
    rewind_change_apply(conn, table).await?;
    // Per statement, so the pooled connection keeps its defaults for other work.
    conn.execute(AssertSqlSafe(format!(
        "SET SESSION lock_wait_timeout = {}",
        args.swap_wait_secs.max(1)
    )))
    .await
    .context("cannot set lock_wait_timeout")?;
    let renamed = conn
        .execute(AssertSqlSafe(format!(
            "RENAME TABLE `{table}` TO `{old}`, `{staging}` TO `{table}`"
        )))
        .await;
    if let Err(e) = renamed {
        // ER_LOCK_WAIT_TIMEOUT
        let timed_out = e
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
            .is_some_and(|d| d.number() == 1205);
        if timed_out {
            bail!(
                "cannot swap the new copy into MySQL table {table}: readers held it for more than \
                 {}s (MYSQL_SWAP_WAIT_SECS); {table} is unchanged",
                args.swap_wait_secs
            );
        }
        return Err(e).with_context(|| format!("cannot swap {staging} into {table}"));
    }
    conn.execute(AssertSqlSafe(format!("DROP TABLE IF EXISTS `{old}`")))
        .await
        .with_context(|| format!("cannot drop {old}"))?;
    conn.execute("SET SESSION lock_wait_timeout = DEFAULT")
        .await
        .context("cannot reset lock_wait_timeout")?;
    Ok(())
}

/// The table is about to hold a copy as of the run's PostgreSQL snapshot, older than
/// changes `jobs cdc` may have applied: its change apply must read the table's change
/// topic again from the start (replaying it in order converges on the source), and the
/// new generation makes a running apply restart from there. Done before the swap, so a
/// crash in between costs only a harmless replay.
async fn rewind_change_apply(conn: &mut MySqlConnection, table: &str) -> Result<()> {
    let rewound = sqlx::query(
        "UPDATE cdc_sink_offsets SET next_offset = 0, generation = generation + 1 \
         WHERE target_table = ?",
    )
    .bind(table)
    .execute(&mut *conn)
    .await;
    match rewound {
        Ok(done) if done.rows_affected() > 0 => {
            tracing::info!(
                table,
                "change apply (jobs cdc) rewound to the start of its topic"
            );
            Ok(())
        }
        Ok(_) => Ok(()),
        // ER_NO_SUCH_TABLE: a database initialised before change data capture
        Err(e)
            if e.as_database_error()
                .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
                .is_some_and(|d| d.number() == 1146) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot rewind the change apply of {table}")),
    }
}

/// A short random id naming one run's staging tables.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_mysql_limits() {
        assert_eq!(staging_name("users", "ab12cd34"), "users__stg_ab12cd34");
        assert!(staging_name("mart_user_activity", &run_id()).len() <= 64);
        assert_eq!(lock_name("db", "users"), "finals.db.users");
        assert_eq!(lock_name(&"d".repeat(80), "t").chars().count(), 64);
    }
}
