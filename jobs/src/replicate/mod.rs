//! `jobs replicate`: PostgreSQL tables to MySQL, done by Spark over JDBC.
//!
//! The run takes the MySQL locks of its tables, then exports one PostgreSQL snapshot
//! that every read of the run imports (Spark's parallel reads, the key ranges and the
//! source checksums), so the copy is the source as of one point in time however busy
//! PostgreSQL is. Per table: Spark reads the table in parallel (split on the primary
//! key) and writes it in batches into this run's MySQL staging table; row count and
//! content checksum of source and staging must match; then the staging table is
//! swapped in atomically (`mysql::staging`).
//!
//! `--verify-only` runs the comparison alone, copying nothing (`verify`).

mod verify;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::builder::PossibleValuesParser;
use common::PostgresSettings;
use common::schema::{self, Kind, TABLES, Table};
use sqlx::{AssertSqlSafe, MySqlPool};

use crate::fingerprint::{mysql_fingerprint, postgres_fingerprint};
use crate::mysql::staging::{self, LockArgs, TableLocks};
use crate::postgres::Snapshot;
use crate::spark::jdbc::{self, JdbcTarget, Partitioning};
use crate::spark::{SparkSession, side_by_side};
use crate::{Settings, out};

/// Replicate PostgreSQL tables to MySQL through Spark, verified by row count and
/// content checksum, swapped in atomically.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these tables (default: all five)
    #[arg(long = "table", value_parser = PossibleValuesParser::new(TABLES.map(|t| t.name)))]
    tables: Vec<String>,
    /// Parallel JDBC reads per table, split on the primary key
    #[arg(long, env = "REPLICATE_PARTITIONS", default_value_t = 4)]
    partitions: u32,
    /// Rows per JDBC write batch into MySQL
    #[arg(long, env = "REPLICATE_BATCH_SIZE", default_value_t = 10_000)]
    batch_size: u32,
    /// Rows per JDBC fetch from PostgreSQL
    #[arg(long, env = "REPLICATE_FETCH_SIZE", default_value_t = 10_000)]
    fetch_size: u32,
    #[command(flatten)]
    locks: LockArgs,
    /// Benchmark baseline: Spark's default JDBC options into <table>__baseline
    #[arg(long, hide = true)]
    baseline: bool,
    /// Copy nothing: compare each table in PostgreSQL with its MySQL replica (row count
    /// and content checksum, as the copy verifies) and name the first differing key
    /// ranges; fails when any table differs
    #[arg(long, conflicts_with = "baseline")]
    verify_only: bool,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let tables: Vec<_> = if args.tables.is_empty() {
        TABLES.iter().collect()
    } else {
        args.tables
            .iter()
            .filter_map(|name| schema::table(name))
            .collect()
    };
    if args.verify_only {
        // The fingerprints are computed inside the databases: no Spark session needed.
        return verify::run(settings, &tables, args.locks).await;
    }
    // The primary, or its hot standby (POSTGRES_READ_FROM): every read of the run
    // goes there; the baseline too.
    let read_pg = settings.postgres_reads.target(&settings.postgres);
    let source = JdbcTarget::postgres(&read_pg)?;
    let sink = JdbcTarget::mysql(&settings.mysql)?;
    let mysql_pool = crate::mysql::pool(&settings.mysql).await?;
    let remote = &settings.spark;
    let spark = if args.baseline {
        // A new session per run, as the seed's spark-submit runs had.
        crate::spark::connect(remote, "jobs-replicate-baseline").await?
    } else {
        let key = format!("jobs-replicate|{}|{}", source.url, sink.url);
        crate::spark::connect_named(remote, "jobs-replicate", &key).await?
    };
    let started = Instant::now();
    let tuning = Tuning {
        partitions: args.partitions.max(1),
        batch_size: args.batch_size.max(1),
        fetch_size: args.fetch_size.max(1),
    };
    if args.baseline {
        for r in run_baseline(&spark, &source, &sink, &tables).await? {
            out!("{:<20} baseline  {:.2}s", r.table, r.seconds);
        }
        out!("baseline: {:.2}s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let locks = TableLocks::acquire(&settings.mysql, &names, args.locks).await?;
    // Taken once the locks are held: a run that waited copies the newer state. On the
    // standby, only once it has replayed what the primary held at this point.
    settings.postgres_reads.ready(&settings.postgres).await?;
    let snapshot = Snapshot::export(&read_pg).await?;
    let ctx = Job {
        spark: &spark,
        pg: &read_pg,
        snapshot: &snapshot,
        mysql_pool: &mysql_pool,
        locks: &locks,
        lock_args: args.locks,
        run: staging::run_id(),
        source: &source,
        sink: &sink,
        tuning,
    };
    let reports = replicate(&ctx, &tables).await;
    locks.release().await;
    let reports = reports?;
    for r in &reports {
        out!(
            "{:<20} {:>9} rows  verified  {:.2}s",
            r.table,
            r.rows,
            r.seconds
        );
    }
    out!(
        "replicated {} table(s) in {:.2}s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

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
    /// The run's Spark Connect session (shared by the tables copied side by side).
    pub spark: &'a SparkSession,
    pub pg: &'a PostgresSettings,
    pub snapshot: &'a Snapshot,
    pub mysql_pool: &'a MySqlPool,
    pub locks: &'a TableLocks,
    pub lock_args: LockArgs,
    /// Names this run's staging tables.
    pub run: String,
    pub source: &'a JdbcTarget,
    pub sink: &'a JdbcTarget,
    pub tuning: Tuning,
}

/// Replicates the tables concurrently (Spark runs their jobs side by side); once
/// every table has finished or failed, one error names each failed table.
pub async fn replicate(ctx: &Job<'_>, tables: &[&'static Table]) -> Result<Vec<TableReport>> {
    side_by_side(
        "replication",
        tables,
        |t| t.name,
        |t| replicate_table(ctx, t),
    )
    .await
}

async fn replicate_table(ctx: &Job<'_>, table: &'static Table) -> Result<TableReport> {
    let started = Instant::now();
    let pk = table.primary_key;
    let mut pg = ctx.snapshot.import(ctx.pg).await?;
    let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT min({pk})::bigint, max({pk})::bigint FROM {}",
        table.name
    )))
    .fetch_one(&mut pg)
    .await
    .with_context(|| format!("cannot read PostgreSQL table {}", table.name))?;

    let load = |staging: String| async move {
        tracing::debug!(
            table = table.name,
            "staging ready after {:?}",
            started.elapsed()
        );
        if let (Some(min), Some(max)) = (min, max) {
            let dbtable = format!("(SELECT {} FROM {}) AS src", select_list(table), table.name);
            let session_init = ctx.snapshot.session_init_sql();
            let df = jdbc::read(
                ctx.spark,
                ctx.source,
                &dbtable,
                Some(Partitioning {
                    column: pk,
                    lower: min,
                    upper: max + 1,
                    partitions: ctx.tuning.partitions,
                }),
                ctx.tuning.fetch_size,
                Some(&session_init),
            );
            jdbc::append(df, ctx.sink, &staging, ctx.tuning.batch_size)
                .await
                .with_context(|| format!("Spark could not copy {} to MySQL", table.name))?;
            tracing::debug!(
                table = table.name,
                "Spark copy done after {:?}",
                started.elapsed()
            );
        }
        let source = postgres_fingerprint(&mut pg, table).await?;
        let copy = mysql_fingerprint(ctx.mysql_pool, table, &staging).await?;
        tracing::debug!(
            table = table.name,
            "checksums done after {:?}",
            started.elapsed()
        );
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
        Ok(source)
    };
    let fp = staging::replace(
        ctx.mysql_pool,
        ctx.locks,
        table.name,
        &ctx.run,
        ctx.lock_args,
        load,
    )
    .await?;
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

/// The columns as Spark reads them. Timestamps travel as text with all six
/// fractional digits: MySQL parses that exactly into DATETIME(6), whereas Connector/J
/// drops the fraction of a timestamp parameter when the server announces itself with
/// MariaDB's `5.5.5-` version prefix (older than MySQL 5.6.4, the first with
/// fractional seconds).
fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Timestamp => format!("to_char({0}, 'YYYY-MM-DD HH24:MI:SS.US') AS {0}", c.name),
            _ => c.name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The benchmark baseline: each table in turn, one JDBC partition, Spark's default
/// write options, `overwrite` into `<table>__baseline`, no verification.
async fn run_baseline(
    spark: &SparkSession,
    source: &JdbcTarget,
    sink: &JdbcTarget,
    tables: &[&'static Table],
) -> Result<Vec<TableReport>> {
    let mut reports = Vec::new();
    for t in tables {
        let started = Instant::now();
        let df = jdbc::read(spark, source, t.name, None, 1000, None);
        jdbc::overwrite_with_defaults(df, sink, &format!("{}__baseline", t.name))
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
