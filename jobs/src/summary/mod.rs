//! `jobs summary`: row counts across the platform, for `make demo` and operators.

use anyhow::{Context, Result};
use common::schema::{MARTS, TABLES};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

use crate::{Settings, out};

/// Print row counts: each table in PostgreSQL and MySQL, the marts, the quarantines,
/// the data vault's hubs, links and satellites.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data vault warehouse's database
    #[arg(long, env = "DWH_DB", default_value = "dwh")]
    dwh_db: String,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let pg = crate::postgres::pool(&settings.postgres).await?;
    let my = crate::mysql::pool(&settings.mysql).await?;
    let mut summary = collect(&pg, &my).await?;
    let dwh = crate::dwh::warehouse(&settings.postgres, &args.dwh_db);
    summary.vault = match crate::postgres::pool(&dwh).await {
        Ok(pool) => vault(&pool).await?,
        Err(e) => {
            tracing::warn!("{e:#}");
            Vec::new()
        }
    };
    out!("{summary}");
    Ok(())
}

/// Rows of each hub, link and satellite (none before the first `jobs dwh`).
async fn vault(dwh: &PgPool) -> Result<Vec<(String, i64)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename ~ '^(hub|link|sat)_' ORDER BY tablename ~ '^sat_', tablename ~ '^link_', \
         tablename",
    )
    .fetch_all(dwh)
    .await
    .context("cannot list the data vault's tables")?;
    let mut out = Vec::new();
    for t in tables {
        // Names from the catalog, matching the pattern above.
        let (rows,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(dwh)
            .await
            .with_context(|| format!("cannot count vault table {t}"))?;
        out.push((t, rows));
    }
    Ok(out)
}

pub struct Summary {
    /// (table, rows in PostgreSQL, rows in MySQL)
    pub tables: Vec<(&'static str, i64, i64)>,
    pub marts: Vec<(&'static str, i64)>,
    pub quarantined: i64,
    /// Change events `jobs cdc` could not apply (MySQL cdc_quarantine).
    pub cdc_quarantined: i64,
    /// (hub, link or satellite table, rows) of the data vault.
    pub vault: Vec<(String, i64)>,
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
        vault: Vec::new(),
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
        write!(f, "{:<22} {:>12}", "cdc_quarantine", self.cdc_quarantined)?;
        if !self.vault.is_empty() {
            write!(f, "\n{:<22} {:>12}", "data vault", "rows")?;
        }
        for (t, rows) in &self.vault {
            write!(f, "\n{t:<22} {rows:>12}")?;
        }
        Ok(())
    }
}
