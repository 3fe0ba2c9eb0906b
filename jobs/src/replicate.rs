//! `jobs replicate`: PostgreSQL tables to MySQL, done by Spark over JDBC.
//!
//! Per table: find the key range in PostgreSQL, let Spark read it in parallel
//! (split on the primary key) and write it in batches into a MySQL staging table,
//! compare row count and content checksum of source and staging, then swap the
//! staging table in atomically. Rows are bounded by the key maximum seen at the
//! start, so rows inserted meanwhile (the stream adds users) wait for the next run
//! instead of breaking the comparison.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use common::schema::Table;
use spark_connect_rs::SparkSession;
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

use crate::checksum::{self, Fingerprint};
use crate::jdbc::{self, JdbcTarget, Partitioning};
use crate::mysql_swap;
use crate::outcome::side_by_side;

#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Parallel JDBC reads per table (and writers into MySQL).
    pub partitions: u32,
    /// Rows per JDBC write batch.
    pub batch_size: u32,
    /// Rows per JDBC fetch from PostgreSQL.
    pub fetch_size: u32,
}

#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: &'static str,
    pub rows: i64,
    pub checksum: String,
    pub seconds: f64,
}

pub struct Job<'a> {
    /// Clients of the run's one Spark Connect session; the tables are spread over
    /// them so that they are copied side by side (see [`crate::spark::connect_named`]).
    pub spark: &'a [SparkSession],
    pub pg_pool: &'a PgPool,
    pub mysql_pool: &'a MySqlPool,
    pub source: &'a JdbcTarget,
    pub sink: &'a JdbcTarget,
    pub tuning: Tuning,
}

/// Replicates the tables concurrently (Spark runs their jobs side by side); once
/// every table has finished or failed, one error names each failed table.
pub async fn run(ctx: &Job<'_>, tables: &[&'static Table]) -> Result<Vec<TableReport>> {
    side_by_side(
        "replication",
        ctx.spark,
        tables,
        |t| t.name,
        |spark, t| replicate_table(ctx, spark, t),
    )
    .await
}

async fn replicate_table(
    ctx: &Job<'_>,
    spark: &SparkSession,
    table: &'static Table,
) -> Result<TableReport> {
    let started = Instant::now();
    let pk = table.primary_key;
    let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT min({pk})::bigint, max({pk})::bigint FROM {}",
        table.name
    )))
    .fetch_one(ctx.pg_pool)
    .await
    .with_context(|| format!("cannot read PostgreSQL table {}", table.name))?;

    let staging = mysql_swap::prepare_staging(ctx.mysql_pool, table.name).await?;
    tracing::debug!(
        table = table.name,
        "staging ready after {:?}",
        started.elapsed()
    );
    let result = async {
        if let (Some(min), Some(max)) = (min, max) {
            let dbtable = format!("(SELECT * FROM {} WHERE {pk} <= {max}) AS src", table.name);
            let df = jdbc::read(
                spark,
                ctx.source,
                &dbtable,
                Some(Partitioning {
                    column: pk,
                    lower: min,
                    upper: max + 1,
                    partitions: ctx.tuning.partitions,
                }),
                ctx.tuning.fetch_size,
            )?;
            jdbc::append(df, ctx.sink, &staging, ctx.tuning.batch_size)
                .await
                .with_context(|| format!("Spark could not copy {} to MySQL", table.name))?;
            tracing::debug!(table = table.name, "Spark copy done after {:?}", started.elapsed());
        }
        let source = postgres_fingerprint(ctx.pg_pool, table, max.unwrap_or(0)).await?;
        let copy = mysql_fingerprint(ctx.mysql_pool, table, &staging).await?;
        tracing::debug!(table = table.name, "checksums done after {:?}", started.elapsed());
        if source != copy {
            bail!(
                "{} differs after copying: PostgreSQL has {} rows (checksum {}), MySQL staging has {} rows (checksum {})",
                table.name,
                source.rows,
                source.checksum,
                copy.rows,
                copy.checksum
            );
        }
        mysql_swap::swap_in(ctx.mysql_pool, table.name).await?;
        Ok(source)
    }
    .await;
    match result {
        Ok(fp) => {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(
                table = table.name,
                rows = fp.rows,
                checksum = %fp.checksum,
                "replicated and verified in {seconds:.2}s"
            );
            Ok(TableReport {
                table: table.name,
                rows: fp.rows,
                checksum: fp.checksum,
                seconds,
            })
        }
        Err(e) => {
            mysql_swap::discard_staging(ctx.mysql_pool, table.name).await;
            Err(e)
        }
    }
}

pub async fn postgres_fingerprint(
    pool: &PgPool,
    table: &Table,
    max_key: i64,
) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) =
        sqlx::query_as(AssertSqlSafe(checksum::postgres_sql(table, max_key)))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot checksum PostgreSQL table {}", table.name))?;
    Ok(Fingerprint { rows, checksum })
}

pub async fn mysql_fingerprint(
    pool: &MySqlPool,
    table: &Table,
    relation: &str,
) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) =
        sqlx::query_as(AssertSqlSafe(checksum::mysql_sql_for(table, relation)))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot checksum MySQL table {relation}"))?;
    Ok(Fingerprint { rows, checksum })
}

/// The benchmark baseline: each table in turn, one JDBC partition, Spark's default
/// write options, `overwrite` into `<table>__baseline`, no verification.
pub async fn run_baseline(ctx: &Job<'_>, tables: &[&'static Table]) -> Result<Vec<TableReport>> {
    let mut reports = Vec::new();
    for t in tables {
        let started = Instant::now();
        let df = jdbc::read(&ctx.spark[0], ctx.source, t.name, None, 1000)?;
        jdbc::overwrite_with_defaults(df, ctx.sink, &format!("{}__baseline", t.name))
            .await
            .with_context(|| format!("baseline copy of {}", t.name))?;
        reports.push(TableReport {
            table: t.name,
            rows: -1,
            checksum: String::new(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(reports)
}
