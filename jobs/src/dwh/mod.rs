//! `jobs dwh`: the data vault warehouse (hubs, links, satellites with full history) in
//! its own PostgreSQL database, loaded by Spark Structured Streaming from the change
//! topics Debezium fills, exactly once through the sink plugin's vault write. One query
//! reads every change topic, so each micro-batch lands in one transaction; the vault's
//! own offsets are its only position (every start uses a fresh checkpoint). An empty
//! vault starts at the topics' beginning, which holds Debezium's snapshot of every row
//! (the connector keeps change topics forever: retention.ms=-1), so the initial load is
//! the source's state as captured plus every change since.

pub mod model;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::PostgresSettings;
use spark_connect::streaming::{StreamingQuery, Trigger};
use sqlx::PgPool;

use self::model::SourceColumn;
use self::plan::Source;
use crate::spark::jdbc::JdbcTarget;
use crate::spark::{SparkSession, blocking};
use crate::stream::position::kafka_watermarks;
use crate::{Settings, out};

/// The sink id of the vault load (its offsets and commits).
pub const SINK_ID: &str = "dwh";

/// Load the data vault warehouse from the change topics with Spark Structured Streaming.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Load what the change topics hold now, then exit (what an Airflow run does).
    /// Without it: run until SIGTERM.
    #[arg(long)]
    available_now: bool,
    /// The warehouse's database on the PostgreSQL server
    #[arg(long, env = "DWH_DB", default_value = "dwh")]
    database: String,
    /// Debezium's topic.prefix: change topics are <prefix>.<schema>.<table>
    #[arg(long, env = "CDC_TOPIC_PREFIX", default_value = "pg")]
    topic_prefix: String,
    /// Micro-batch interval in continuous mode, in milliseconds
    #[arg(long, env = "DWH_TRIGGER_INTERVAL_MS", default_value_t = 500)]
    trigger_interval_ms: u64,
    /// Upper bound of change events per micro-batch (all topics together)
    #[arg(long, env = "DWH_MAX_OFFSETS_PER_TRIGGER", default_value_t = 50_000)]
    max_offsets_per_trigger: u64,
    /// Directory (as the Spark cluster sees it) under which each query start keeps its
    /// own checkpoint (default: the Connect server's
    /// spark.sql.streaming.checkpointLocation / dwh)
    #[arg(long, env = "DWH_CHECKPOINT_LOCATION")]
    checkpoint_location: Option<String>,
    /// Debezium's replication slot in PostgreSQL (its slot.name)
    #[arg(long, env = "CDC_SLOT_NAME", default_value = "platform_cdc")]
    slot: String,
    /// With --available-now: seconds to wait until Debezium has captured every change
    /// PostgreSQL committed before the run started
    #[arg(long, env = "CDC_CAPTURE_WAIT_SECS", default_value_t = 60)]
    capture_wait_secs: u64,
}

/// The warehouse's connection settings: the source's server and role, its own database.
pub fn warehouse(pg: &PostgresSettings, database: &str) -> PostgresSettings {
    PostgresSettings {
        database: database.to_string(),
        schema: "public".into(),
        ..pg.clone()
    }
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    ensure!(
        args.trigger_interval_ms > 0 && args.max_offsets_per_trigger > 0,
        "--trigger-interval-ms and --max-offsets-per-trigger must be positive"
    );
    common::settings::check_identifier("--topic-prefix", &args.topic_prefix.replace('.', "_"))?;
    let dwh_settings = warehouse(&settings.postgres, &args.database);
    let source = crate::postgres::pool(&settings.postgres).await?;
    let dwh = crate::postgres::pool(&dwh_settings)
        .await
        .with_context(|| {
            format!(
                "the warehouse database {} is missing or unreachable (make up creates it; DWH_DB \
             names it)",
                args.database
            )
        })?;
    let _running = claim(&dwh).await?;
    let sources = source_columns(&source, &settings.postgres.schema).await?;
    create(&dwh, &sources).await?;
    if args.available_now {
        crate::cdc::wait_for_capture(
            &source,
            &args.slot,
            Duration::from_secs(args.capture_wait_secs),
        )
        .await?;
    }
    let spark = crate::spark::connect_named(&settings.spark, "jobs-dwh", "jobs-dwh").await?;
    let topics: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "{}.{}.{}",
                args.topic_prefix, settings.postgres.schema, s.table
            )
        })
        .collect();
    let stop = crate::spark::shutdown::requested();
    let started = Instant::now();
    let mut last_commit = last_commit(&dwh).await?;
    let mut totals = Totals::default();
    let mut wait = Duration::ZERO;
    loop {
        let query = match start(
            settings,
            &spark,
            &dwh,
            &dwh_settings,
            &args,
            &sources,
            &topics,
        )
        .await
        {
            Ok(q) => Some(q),
            Err(e) if args.available_now => return Err(e),
            Err(e) => {
                tracing::error!("the vault load could not start: {e:#}");
                None
            }
        };
        let outcome = match &query {
            Some(q) => watch(q, &dwh, &mut last_commit, &mut totals, &stop).await,
            None => Err(anyhow::anyhow!("not started")),
        };
        match outcome {
            Ok(()) => break,
            Err(e) if args.available_now => {
                bail!("the vault load failed: {}", crate::cdc::query::explain(&e))
            }
            Err(e) => {
                wait = (wait * 2).clamp(Duration::from_secs(2), Duration::from_secs(60));
                tracing::error!(
                    "the vault load stopped: {}; restarting in {}s",
                    crate::cdc::query::explain(&e),
                    wait.as_secs()
                );
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    out!(
        "vault load: {} events, {} hub rows, {} link rows, {} satellite rows, {} quarantined, \
         {} replayed in {:.1}s",
        totals.events,
        totals.hubs,
        totals.links,
        totals.satellites,
        totals.quarantined,
        totals.skipped,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One `jobs dwh` at a time: a session-level advisory lock on a connection of its own,
/// released by the server when the process dies.
async fn claim(dwh: &PgPool) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let mut conn = dwh
        .acquire()
        .await
        .context("cannot connect to the warehouse")?;
    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext('jobs dwh'))")
        .fetch_one(&mut *conn)
        .await
        .context("cannot take the lock of jobs dwh")?;
    ensure!(
        got,
        "jobs dwh is already running (another process holds its lock); not starting a second one"
    );
    Ok(conn)
}

/// The source tables' columns, from PostgreSQL's catalog, in table order.
async fn source_columns(pg: &PgPool, schema: &str) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for table in model::source_tables() {
        let columns: Vec<SourceColumn> = sqlx::query_as(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, \
             c.data_type::text AS data_type, NOT a.attnotnull AS nullable, \
             c.character_maximum_length::int AS max_chars, c.numeric_precision::int AS precision, \
             c.numeric_scale::int AS scale \
             FROM pg_attribute a JOIN information_schema.columns c \
             ON c.table_schema = $1 AND c.table_name = $2 AND c.column_name = a.attname \
             WHERE a.attrelid = format('%I.%I', $1, $2)::regclass AND a.attnum > 0 \
             AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(pg)
        .await
        .with_context(|| format!("cannot read the columns of PostgreSQL table {table}"))?;
        ensure!(
            !columns.is_empty(),
            "PostgreSQL table {schema}.{table} does not exist (make up runs the init)"
        );
        out.push(Source::new(table, columns));
    }
    Ok(out)
}

/// Creates the vault's tables (idempotent), then its views and point-in-time functions,
/// in one transaction.
async fn create(dwh: &PgPool, sources: &[Source]) -> Result<()> {
    let mut tx = dwh
        .begin()
        .await
        .context("cannot start the warehouse's DDL")?;
    // Concurrent first starts would race on CREATE ... IF NOT EXISTS.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('jobs dwh ddl'))")
        .execute(&mut *tx)
        .await?;
    let mut sql = String::from("SET LOCAL client_min_messages = warning;\n");
    sql.push_str(model::BOOKKEEPING);
    for s in sources {
        sql.push_str(&model::ddl(s.table, &s.columns));
    }
    for s in sources {
        sql.push_str(&model::views(s.table, &s.columns));
    }
    // Built from the model and PostgreSQL's own catalog (identifiers, type names), never
    // from user input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .context("cannot create the data vault's tables and views")?;
    tx.commit().await.context("cannot commit the vault's DDL")?;
    Ok(())
}

/// Spark's startingOffsets: the vault's next offset per topic partition, the earliest
/// (-2) where it holds none.
async fn starting_offsets(settings: &Settings, dwh: &PgPool, topics: &[String]) -> Result<String> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, kafka_partition, next_offset FROM vault_sink_offsets WHERE sink_id = $1",
    )
    .bind(SINK_ID)
    .fetch_all(dwh)
    .await
    .context("cannot read the vault's offsets (vault_sink_offsets)")?;
    let mut all = serde_json::Map::new();
    for topic in topics {
        let kafka = kafka_watermarks(&settings.kafka, topic)
            .await
            .with_context(|| {
                format!(
                    "no change topic {topic}: is the Debezium connector registered and running \
                 (make status)?"
                )
            })?;
        let mut start = BTreeMap::new();
        for (p, (low, _)) in kafka {
            let held = rows
                .iter()
                .find(|(t, rp, _)| t == topic && *rp == p)
                .map(|r| r.2);
            if let Some(next) = held.filter(|n| *n < low) {
                tracing::error!(
                    "{topic} partition {p}: Kafka no longer holds offsets {next}..{low} that the \
                     vault never loaded; their history is missing from it"
                );
            }
            start.insert(p.to_string(), held.filter(|n| *n >= low).unwrap_or(-2));
        }
        all.insert(topic.clone(), serde_json::json!(start));
    }
    Ok(serde_json::Value::Object(all).to_string())
}

async fn start(
    settings: &Settings,
    spark: &SparkSession,
    dwh: &PgPool,
    dwh_settings: &PostgresSettings,
    args: &Args,
    sources: &[Source],
    topics: &[String],
) -> Result<StreamingQuery> {
    crate::spark::streaming::configure(
        spark,
        &[
            // Debezium's epoch values are UTC (plan.rs).
            ("spark.sql.session.timeZone", "UTC"),
            // The rule adds a `size(__targets) > 0` filter under the generator (it is
            // never false: an event always has one row), which the optimizer then
            // pushes below the projections, so executors parsed and expanded every
            // event twice.
            (
                "spark.sql.optimizer.excludedRules",
                "org.apache.spark.sql.catalyst.optimizer.InferFiltersFromGenerate",
            ),
        ],
    )
    .await?;
    crate::stream::query::stop_leftover(spark, SINK_ID).await?;
    let starting = starting_offsets(settings, dwh, topics).await?;
    let checkpoint = format!(
        "{}/{}",
        crate::spark::checkpoint_dir(
            spark,
            args.checkpoint_location.as_deref(),
            "dwh",
            "DWH_CHECKPOINT_LOCATION"
        )
        .await?,
        uuid::Uuid::new_v4().simple()
    );
    let source = crate::spark::kafka::source(
        spark,
        &settings.kafka.bootstrap_servers,
        &topics.join(","),
        &starting,
        args.max_offsets_per_trigger,
    )
    .load(None);
    let stages = [
        crate::cdc::changes::envelope_columns(),
        plan::event_columns(),
        plan::reason_columns(sources),
        plan::typed_columns(sources),
        plan::target_columns(sources),
        plan::sink_columns(),
    ];
    let rows = stages.iter().fold(source, |df, columns| {
        df.select_expr(columns.iter().map(String::as_str).collect())
    });
    let trigger = if args.available_now {
        Trigger::AvailableNow
    } else {
        Trigger::ProcessingTime(format!("{} milliseconds", args.trigger_interval_ms))
    };
    let target = JdbcTarget::postgres(dwh_settings)?;
    let writer = rows
        .write_stream()
        .format("pg-exactly-once")
        .output_mode("append")
        .query_name(SINK_ID)
        .trigger(trigger)
        .option("write", "vault")
        .option("url", &target.url)
        .option("user", &target.user)
        .option("passwordEnv", target.password_env)
        .option("sinkId", SINK_ID)
        .option("checkpointLocation", &checkpoint);
    let query = blocking(move || writer.start(""))
        .await
        .context("Spark could not start the vault load")?;
    tracing::info!(starting = %starting, "vault load started");
    Ok(query)
}

#[derive(Debug, Default)]
struct Totals {
    events: i64,
    hubs: i64,
    links: i64,
    satellites: i64,
    quarantined: i64,
    skipped: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct Commit {
    commit_id: i64,
    epoch: i64,
    events: i64,
    hub_rows: i64,
    link_rows: i64,
    satellite_rows: i64,
    quarantined: i64,
    skipped: i64,
}

async fn last_commit(dwh: &PgPool) -> Result<i64> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(commit_id) FROM vault_sink_commits")
        .fetch_one(dwh)
        .await
        .context("cannot read vault_sink_commits")?;
    Ok(id.unwrap_or(0))
}

/// Follows the query until it ends (available-now), fails, or SIGTERM; logs each commit.
async fn watch(
    query: &StreamingQuery,
    dwh: &PgPool,
    last: &mut i64,
    totals: &mut Totals,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    loop {
        let q = query.clone();
        let active = blocking(move || q.is_active())
            .await
            .context("cannot read the state of the streaming query")?;
        let commits: Vec<Commit> = sqlx::query_as(
            "SELECT commit_id, epoch, events, hub_rows, link_rows, satellite_rows, quarantined, \
             skipped FROM vault_sink_commits WHERE commit_id > $1 AND sink_id = $2 \
             ORDER BY commit_id",
        )
        .bind(*last)
        .bind(SINK_ID)
        .fetch_all(dwh)
        .await
        .context("cannot read the vault's commits (vault_sink_commits)")?;
        for c in commits {
            tracing::info!(
                batch = c.epoch,
                events = c.events,
                hubs = c.hub_rows,
                links = c.link_rows,
                satellites = c.satellite_rows,
                quarantined = c.quarantined,
                skipped = c.skipped,
                "vault batch committed"
            );
            totals.events += c.events;
            totals.hubs += c.hub_rows;
            totals.links += c.link_rows;
            totals.satellites += c.satellite_rows;
            totals.quarantined += c.quarantined;
            totals.skipped += c.skipped;
            *last = c.commit_id;
        }
        if !active {
            let q = query.clone();
            return match blocking(move || q.exception())
                .await
                .context("cannot read the streaming query's error")?
            {
                Some(e) => bail!("{}", e.message),
                None => Ok(()),
            };
        }
        if stop.load(Ordering::SeqCst) {
            let q = query.clone();
            if let Err(e) = blocking(move || q.stop()).await {
                tracing::warn!("cannot stop the streaming query: {e:#}");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
