//! `jobs marts`: the three analytical marts, aggregated by Spark from the MySQL
//! replicas and written back to MySQL through a staging table and an atomic swap.
//! Money stays DECIMAL end to end: sums of DECIMAL(12,2) are exact in Spark, and
//! the averages are DECIMAL with 6 fractional digits, never floating point.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::builder::PossibleValuesParser;
use sqlx::{AssertSqlSafe, MySqlPool};

use crate::mysql::staging::{self, LockArgs, TableLocks};
use crate::spark::jdbc::{self, JdbcTarget, Partitioning};
use crate::spark::{SparkSession, side_by_side};
use crate::{Settings, out};

/// Build the analytical marts in MySQL from the MySQL replicas, through Spark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these marts (default: all three)
    #[arg(long = "mart", value_parser = PossibleValuesParser::new(common::schema::MARTS))]
    marts: Vec<String>,
    /// Rows per JDBC write batch into MySQL
    #[arg(long, env = "MARTS_BATCH_SIZE", default_value_t = 10_000)]
    batch_size: u32,
    /// Parallel JDBC reads per MySQL replica, split on the primary key. The marts
    /// and their seven source reads already run side by side, which fills two
    /// cores; raise it for a bigger cluster and larger replicas
    #[arg(long, env = "MARTS_PARTITIONS", default_value_t = 1)]
    partitions: u32,
    #[command(flatten)]
    locks: LockArgs,
    /// Benchmark baseline: Spark's default JDBC options into <mart>__baseline
    #[arg(long, hide = true)]
    baseline: bool,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let selected: Vec<_> = if args.marts.is_empty() {
        MARTS.iter().collect()
    } else {
        args.marts.iter().filter_map(|m| mart(m)).collect()
    };
    let target = JdbcTarget::mysql(&settings.mysql)?;
    let mysql_pool = crate::mysql::pool(&settings.mysql).await?;
    let remote = &settings.spark;
    let spark = if args.baseline {
        crate::spark::connect(remote, "jobs-marts-baseline").await?
    } else {
        // Runs against the same MySQL share the session and its `src_*` views;
        // a view replaced by a concurrent run reads the same replica.
        let key = format!("jobs-marts|{}", target.url);
        crate::spark::connect_named(remote, "jobs-marts", &key).await?
    };
    let started = Instant::now();
    // The replicas the marts read and the marts they write, locked for the whole run:
    // a replication swapping a replica waits, so all marts see one set of replicas.
    let mut tables: Vec<&str> = selected
        .iter()
        .flat_map(|m| m.sources.iter().copied())
        .collect();
    if !args.baseline {
        tables.extend(selected.iter().map(|m| m.name));
    }
    let locks = TableLocks::acquire(&settings.mysql, &tables, args.locks).await?;
    let ctx = Job {
        spark: &spark,
        mysql_pool: &mysql_pool,
        mysql: &target,
        locks: &locks,
        lock_args: args.locks,
        run: staging::run_id(),
        batch_size: args.batch_size.max(1),
        fetch_size: 10_000,
        // The baseline reads each replica in one partition.
        partitions: if args.baseline {
            1
        } else {
            args.partitions.max(1)
        },
    };
    if args.baseline {
        let reports = run_baseline(&ctx, &selected).await;
        locks.release().await;
        for r in reports? {
            out!("{:<20} baseline  {:.2}s", r.mart, r.seconds);
        }
        out!("baseline: {:.2}s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let reports = build(&ctx, &selected).await;
    locks.release().await;
    let reports = reports?;
    for r in &reports {
        out!("{:<20} {:>9} rows  {:.2}s", r.mart, r.rows, r.seconds);
    }
    out!(
        "built {} mart(s) in {:.2}s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A mart: its name (also its MySQL table), the replicas it reads and its query
/// over them (the replicas are Spark temporary views named `src_<table>`).
///
/// `query` is written for the cluster: the fact rows are aggregated before they
/// meet a dimension, and the dimensions (and `orders`, for the order lines) are
/// broadcast, so the big replicas are never shuffled or sorted for a join. The
/// replicas' sizes are unknown to Spark (JDBC reports none), so without the hints
/// it plans sort-merge joins that shuffle both sides. `plain` is the same mart as
/// the seed's scripts wrote it (join, then group); the benchmark baseline runs it.
#[derive(Debug, Clone, Copy)]
pub struct Mart {
    pub name: &'static str,
    pub sources: &'static [&'static str],
    pub query: &'static str,
    pub plain: &'static str,
}

pub const MARTS: [Mart; 3] = [
    Mart {
        name: "mart_user_activity",
        sources: &["users", "orders"],
        query: "SELECT /*+ BROADCAST(u) */ u.user_id, u.first_name, u.last_name, o.status, \
                o.order_count, o.total_spent \
                FROM (SELECT user_id, status, CAST(count(*) AS BIGINT) AS order_count, \
                      CAST(sum(total_amount) AS DECIMAL(22,2)) AS total_spent \
                      FROM src_orders GROUP BY user_id, status) o \
                JOIN src_users u ON u.user_id = o.user_id",
        plain: "SELECT u.user_id, u.first_name, u.last_name, o.status, \
                CAST(count(*) AS BIGINT) AS order_count, \
                CAST(sum(o.total_amount) AS DECIMAL(22,2)) AS total_spent \
                FROM src_orders o JOIN src_users u ON u.user_id = o.user_id \
                GROUP BY u.user_id, u.first_name, u.last_name, o.status",
    },
    Mart {
        name: "mart_product_sales",
        sources: &["products", "orders", "order_details"],
        query: "SELECT /*+ BROADCAST(p) */ p.product_id, p.name, s.status, \
                s.total_quantity_sold, s.total_sales \
                FROM (SELECT /*+ BROADCAST(o) */ d.product_id, o.status, \
                      CAST(sum(d.quantity) AS BIGINT) AS total_quantity_sold, \
                      CAST(sum(d.total_price) AS DECIMAL(22,2)) AS total_sales \
                      FROM src_order_details d JOIN src_orders o ON o.order_id = d.order_id \
                      GROUP BY d.product_id, o.status) s \
                JOIN src_products p ON p.product_id = s.product_id",
        plain: "SELECT p.product_id, p.name, o.status, \
                CAST(sum(d.quantity) AS BIGINT) AS total_quantity_sold, \
                CAST(sum(d.total_price) AS DECIMAL(22,2)) AS total_sales \
                FROM src_order_details d \
                JOIN src_orders o ON o.order_id = d.order_id \
                JOIN src_products p ON p.product_id = d.product_id \
                GROUP BY p.product_id, p.name, o.status",
    },
    Mart {
        name: "mart_average_check",
        sources: &["users", "orders"],
        query: "SELECT /*+ BROADCAST(u) */ o.status, u.loyalty_status, \
                CAST(avg(o.total_amount) AS DECIMAL(16,6)) AS average_check \
                FROM src_orders o JOIN src_users u ON u.user_id = o.user_id \
                GROUP BY o.status, u.loyalty_status",
        plain: "SELECT o.status, u.loyalty_status, \
                CAST(avg(o.total_amount) AS DECIMAL(16,6)) AS average_check \
                FROM src_orders o JOIN src_users u ON u.user_id = o.user_id \
                GROUP BY o.status, u.loyalty_status",
    },
];

pub fn mart(name: &str) -> Option<&'static Mart> {
    MARTS.iter().find(|m| m.name == name)
}

#[derive(Debug, Clone)]
pub struct MartReport {
    pub mart: &'static str,
    pub rows: i64,
    pub seconds: f64,
}

pub struct Job<'a> {
    /// The run's Spark Connect session (shared by the marts built side by side).
    pub spark: &'a SparkSession,
    pub mysql_pool: &'a MySqlPool,
    pub mysql: &'a JdbcTarget,
    pub locks: &'a TableLocks,
    pub lock_args: LockArgs,
    /// Names this run's staging tables.
    pub run: String,
    pub batch_size: u32,
    pub fetch_size: u32,
    /// Parallel JDBC reads per source replica.
    pub partitions: u32,
}

/// Registers the MySQL replicas the marts need as Spark views, then builds the
/// marts concurrently.
pub async fn build(ctx: &Job<'_>, marts: &[&'static Mart]) -> Result<Vec<MartReport>> {
    let started = Instant::now();
    register_sources(ctx, marts).await?;
    tracing::debug!("sources registered after {:?}", started.elapsed());
    side_by_side("building marts", marts, |m| m.name, |m| build_mart(ctx, m)).await
}

/// Registers the MySQL replicas the marts read as Spark views `src_<table>`, each
/// read in parallel, split on its primary key. (Caching them so that a replica
/// several marts join is read once was slower here: see docs/BENCHMARKS.md.)
async fn register_sources(ctx: &Job<'_>, marts: &[&'static Mart]) -> Result<()> {
    let mut sources: Vec<&str> = marts
        .iter()
        .flat_map(|m| m.sources.iter().copied())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    for name in sources {
        let table = common::schema::table(name).context("unknown source table")?;
        let pk = table.primary_key;
        let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(MIN({pk}) AS SIGNED), CAST(MAX({pk}) AS SIGNED) FROM `{name}`"
        )))
        .fetch_one(ctx.mysql_pool)
        .await
        .with_context(|| format!("cannot read MySQL table {name}"))?;
        let partitioning = match (min, max) {
            (Some(lower), Some(upper)) => Some(Partitioning {
                column: pk,
                lower,
                upper: upper + 1,
                partitions: ctx.partitions,
            }),
            _ => None,
        };
        let view = format!("src_{name}");
        let df = jdbc::read(
            ctx.spark,
            ctx.mysql,
            name,
            partitioning,
            ctx.fetch_size,
            None,
        );
        crate::spark::blocking(move || df.create_or_replace_temp_view(&view))
            .await
            .with_context(|| format!("cannot read MySQL table {name}"))?;
    }
    Ok(())
}

/// The benchmark baseline: each mart in turn, Spark's default write options,
/// `overwrite` into `<mart>__baseline`.
pub async fn run_baseline(ctx: &Job<'_>, marts: &[&'static Mart]) -> Result<Vec<MartReport>> {
    register_sources(ctx, marts).await?;
    let mut reports = Vec::new();
    for m in marts {
        let started = Instant::now();
        let df = ctx.spark.sql(m.plain)?;
        jdbc::overwrite_with_defaults(df, ctx.mysql, &format!("{}__baseline", m.name))
            .await
            .with_context(|| format!("baseline build of {}", m.name))?;
        reports.push(MartReport {
            mart: m.name,
            rows: -1,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(reports)
}

async fn build_mart(ctx: &Job<'_>, mart: &'static Mart) -> Result<MartReport> {
    let started = Instant::now();
    let load = |staging: String| async move {
        // Planned lazily: a query error surfaces from the write.
        let df = ctx
            .spark
            .sql(mart.query)
            .with_context(|| format!("Spark could not plan {}", mart.name))?;
        jdbc::append(df, ctx.mysql, &staging, ctx.batch_size)
            .await
            .with_context(|| format!("Spark could not write {}", mart.name))?;
        let (rows,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM `{staging}`"
        )))
        .fetch_one(ctx.mysql_pool)
        .await
        .with_context(|| format!("cannot count {staging}"))?;
        Ok(rows)
    };
    let rows = staging::replace(
        ctx.mysql_pool,
        ctx.locks,
        mart.name,
        &ctx.run,
        ctx.lock_args,
        load,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(mart = mart.name, rows, "built in {seconds:.2}s");
    Ok(MartReport {
        mart: mart.name,
        rows,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marts_match_the_schema_list() {
        let names: Vec<&str> = MARTS.iter().map(|m| m.name).collect();
        assert_eq!(names, common::schema::MARTS);
        for m in &MARTS {
            for s in m.sources {
                assert!(common::schema::table(s).is_some(), "{s}");
                for q in [m.query, m.plain] {
                    assert!(
                        q.contains(&format!("src_{s}")),
                        "{} does not use {s}",
                        m.name
                    );
                }
            }
        }
    }
}
