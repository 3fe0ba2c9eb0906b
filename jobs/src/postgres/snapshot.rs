//! One point in time for a whole run: a REPEATABLE READ transaction exports its
//! snapshot (`pg_export_snapshot`), and every read of the run — Spark's parallel JDBC
//! reads and the job's own key ranges and checksums — imports it. Inserts, updates
//! and deletes that commit meanwhile are invisible to all of them alike, so the copy
//! and its verification agree without retries, however busy the source is.

use anyhow::{Context, Result};
use common::PostgresSettings;
use sqlx::{Connection, PgConnection};

/// The exporting transaction; the snapshot can be imported while it stays open.
pub struct Snapshot {
    _exporter: PgConnection,
    id: String,
}

impl Snapshot {
    pub async fn export(pg: &PostgresSettings) -> Result<Self> {
        let mut conn = connect(pg).await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .context("cannot start the snapshot transaction")?;
        let (id,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .context("cannot export a PostgreSQL snapshot")?;
        tracing::debug!(snapshot = %id, "PostgreSQL snapshot exported");
        Ok(Self {
            _exporter: conn,
            id,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// SQL that makes a fresh session read as of this snapshot (its first statements;
    /// the transaction stays open for the session's queries). Spark's JDBC reader runs
    /// it as `sessionInitStatement` on each connection.
    pub fn session_init_sql(&self) -> String {
        // The id is PostgreSQL's own (hex digits and dashes), not user input.
        format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            self.id
        )
    }

    /// A connection of the job's own that reads as of the snapshot.
    pub async fn import(&self, pg: &PostgresSettings) -> Result<PgConnection> {
        let mut conn = connect(pg).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(self.session_init_sql()))
            .execute(&mut conn)
            .await
            .context("cannot import the run's PostgreSQL snapshot")?;
        Ok(conn)
    }
}

async fn connect(pg: &PostgresSettings) -> Result<PgConnection> {
    PgConnection::connect_with(&pg.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", pg.describe()))
}
