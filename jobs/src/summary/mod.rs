//! `jobs summary`: row counts across the platform, for `make demo` and operators.

use anyhow::{Context, Result};
use common::schema::{MARTS, TABLES};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

use crate::{Settings, out};

/// Print row counts: each table in PostgreSQL and MySQL, the marts, the quarantines.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(settings: &Settings, _args: Args) -> Result<()> {
    let pg = crate::postgres::pool(&settings.postgres).await?;
    let my = crate::mysql::pool(&settings.mysql).await?;
    out!("{}", collect(&pg, &my).await?);
    Ok(())
}

pub struct Summary {
    /// (table, rows in PostgreSQL, rows in MySQL)
    pub tables: Vec<(&'static str, i64, i64)>,
    pub marts: Vec<(&'static str, i64)>,
    pub quarantined: i64,
    /// Change events `jobs cdc` could not apply (MySQL cdc_quarantine).
    pub cdc_quarantined: i64,
}

pub async fn collect(pg: &PgPool, my: &MySqlPool) -> Result<Summary> {
    let mut tables = Vec::new();
    for t in &TABLES {
        // Names come from the fixed schema list, never from input.
        let (pg_rows,): (i64,) =
            sqlx::query_as(AssertSqlSafe(format!("SELECT count(*) FROM {}", t.name)))
                .fetch_one(pg)
                .await
                .with_context(|| format!("cannot count PostgreSQL table {}", t.name))?;
        let (my_rows,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM `{}`",
            t.name
        )))
        .fetch_one(my)
        .await
        .with_context(|| format!("cannot count MySQL table {}", t.name))?;
        tables.push((t.name, pg_rows, my_rows));
    }
    let mut marts = Vec::new();
    for m in MARTS {
        let (rows,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM `{m}`"
        )))
        .fetch_one(my)
        .await
        .with_context(|| format!("cannot count MySQL table {m}"))?;
        marts.push((m, rows));
    }
    let (quarantined,): (i64,) = sqlx::query_as("SELECT count(*) FROM users_quarantine")
        .fetch_one(pg)
        .await
        .context("cannot count users_quarantine")?;
    let (cdc_quarantined,): (i64,) =
        sqlx::query_as("SELECT CAST(COUNT(*) AS SIGNED) FROM cdc_quarantine")
            .fetch_one(my)
            .await
            .context("cannot count MySQL table cdc_quarantine")?;
    Ok(Summary {
        tables,
        marts,
        quarantined,
        cdc_quarantined,
    })
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<22} {:>12} {:>12}", "table", "PostgreSQL", "MySQL")?;
        for (t, pg, my) in &self.tables {
            writeln!(f, "{t:<22} {pg:>12} {my:>12}")?;
        }
        writeln!(f, "{:<22} {:>12}", "mart", "rows")?;
        for (m, rows) in &self.marts {
            writeln!(f, "{m:<22} {rows:>12}")?;
        }
        writeln!(f, "{:<22} {:>12}", "users_quarantine", self.quarantined)?;
        write!(f, "{:<22} {:>12}", "cdc_quarantine", self.cdc_quarantined)
    }
}
