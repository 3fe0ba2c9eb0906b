//! `jobs cdc`: the change topics Debezium fills from PostgreSQL applied to the MySQL
//! replicas by Spark Structured Streaming, exactly once and in source order per key.
//! One streaming query per table (a table whose events cannot be applied stops alone),
//! all in one Spark Connect session; `changes` turns the events into the sink's
//! columns, the sink plugin's replica write applies each micro-batch in one MySQL
//! transaction with its Kafka offsets. MySQL's offsets are the only position: every
//! query (re)start reads from them with a fresh checkpoint, so a lost checkpoint or a
//! reload by `jobs replicate` (which rewinds them) is never a silent skip.

pub mod changes;
pub mod query;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::schema;
use sqlx::MySqlPool;

use crate::mysql::staging::{LockArgs, lock_name};
use crate::output::one_line;
use crate::{Settings, out};

pub use query::{CdcOptions, TableTotals};

/// Apply the PostgreSQL changes Debezium captured (one Kafka topic per table) to the
/// MySQL replicas with Spark Structured Streaming, exactly once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply what the change topics hold now, then exit (what an Airflow run does).
    /// Without it: run until SIGTERM.
    #[arg(long)]
    available_now: bool,
    /// Only this table (repeatable; default: every replicated table)
    #[arg(long = "table", value_name = "TABLE")]
    tables: Vec<String>,
    /// Debezium's topic.prefix: change topics are <prefix>.<schema>.<table>
    #[arg(long, env = "CDC_TOPIC_PREFIX", default_value = "pg")]
    topic_prefix: String,
    /// Micro-batch interval in continuous mode, in milliseconds
    #[arg(long, env = "CDC_TRIGGER_INTERVAL_MS", default_value_t = 1000)]
    trigger_interval_ms: u64,
    /// Upper bound of change events per micro-batch and table
    #[arg(long, env = "CDC_MAX_OFFSETS_PER_TRIGGER", default_value_t = 50_000)]
    max_offsets_per_trigger: u64,
    /// Directory (as the Spark cluster sees it) under which each query start keeps its
    /// own checkpoint (default: the Connect server's
    /// spark.sql.streaming.checkpointLocation / cdc)
    #[arg(long, env = "CDC_CHECKPOINT_LOCATION")]
    checkpoint_location: Option<String>,
    /// Debezium's replication slot in PostgreSQL (its slot.name)
    #[arg(long, env = "CDC_SLOT_NAME", default_value = "platform_cdc")]
    slot: String,
    /// With --available-now: seconds to wait until Debezium has captured every change
    /// PostgreSQL committed before the run started
    #[arg(long, env = "CDC_CAPTURE_WAIT_SECS", default_value_t = 60)]
    capture_wait_secs: u64,
    #[command(flatten)]
    locks: LockArgs,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let tables = tables(&args.tables)?;
    ensure!(
        args.trigger_interval_ms > 0 && args.max_offsets_per_trigger > 0,
        "--trigger-interval-ms and --max-offsets-per-trigger must be positive"
    );
    common::settings::check_identifier("--topic-prefix", &args.topic_prefix.replace('.', "_"))?;
    let opts = CdcOptions {
        topic_prefix: args.topic_prefix,
        source_schema: settings.postgres.schema.clone(),
        available_now: args.available_now,
        trigger_interval: Duration::from_millis(args.trigger_interval_ms),
        max_offsets_per_trigger: args.max_offsets_per_trigger,
        checkpoint_location: args.checkpoint_location,
        lock_wait_secs: args.locks.lock_wait_secs,
    };
    let pool = crate::mysql::pool(&settings.mysql).await?;
    let pg = crate::postgres::pool(&settings.postgres).await?;
    let _running = claim(&pool, &settings.mysql.database).await?;
    if args.available_now {
        wait_for_capture(&pg, &args.slot, Duration::from_secs(args.capture_wait_secs)).await?;
    }
    let spark = crate::spark::connect_named(&settings.spark, "jobs-cdc", "jobs-cdc").await?;
    query::warn_unreplicated_topics(&settings.kafka, &opts, &tables).await;
    let stop = crate::spark::shutdown::requested();
    let started = Instant::now();
    let totals = follow(settings, &spark, (&pool, &pg), &opts, &tables, &stop).await;
    for (table, t) in &totals.per_table {
        out!(
            "{:<20} {:>7} changes  {:>7} upserted  {:>6} deleted  {:>5} quarantined  {:>6} skipped",
            table,
            t.changes,
            t.upserted,
            t.deleted,
            t.quarantined,
            t.skipped
        );
    }
    if !totals.failed.is_empty() {
        for (table, why) in &totals.failed {
            tracing::error!(table, "{why}");
        }
        bail!(
            "change data capture stopped for {} table(s): {}",
            totals.failed.len(),
            totals
                .failed
                .iter()
                .map(|(t, why)| format!("{t}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    out!(
        "applied the changes of {} table(s) in {:.1}s",
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The tables to apply: every replicated table, or the ones asked for.
fn tables(asked: &[String]) -> Result<Vec<&'static str>> {
    if asked.is_empty() {
        return Ok(schema::TABLES.iter().map(|t| t.name).collect());
    }
    asked
        .iter()
        .map(|name| {
            schema::table(name).map(|t| t.name).with_context(|| {
                format!(
                    "unknown table {name}; replicated tables: {}",
                    schema::TABLES.map(|t| t.name).join(", ")
                )
            })
        })
        .collect()
}

/// Waits until Debezium has captured every change PostgreSQL committed before now:
/// the job commits a logical decoding message (a barrier, which the connector skips:
/// message.prefix.exclude.list) and waits until the slot confirms its position; the
/// connector confirms a position only once the events before it are in Kafka. An
/// available-now run then applies all of them, not only what Kafka happened to hold.
pub async fn wait_for_capture(pg: &sqlx::PgPool, slot: &str, wait: Duration) -> Result<()> {
    let (target,): (String,) =
        sqlx::query_as("SELECT pg_logical_emit_message(true, 'jobs-cdc', 'barrier')::text")
            .fetch_one(pg)
            .await
            .context("cannot write the capture barrier into PostgreSQL's WAL")?;
    let deadline = Instant::now() + wait;
    loop {
        let row: Option<(Option<bool>, bool)> = sqlx::query_as(
            "SELECT confirmed_flush_lsn >= $2::pg_lsn, active FROM pg_replication_slots \
             WHERE slot_name = $1",
        )
        .bind(slot)
        .bind(&target)
        .fetch_optional(pg)
        .await
        .context("cannot read PostgreSQL's replication slots")?;
        let Some((caught_up, active)) = row else {
            bail!(
                "PostgreSQL has no replication slot {slot}: the Debezium connector was never \
                 registered (make up registers it; CDC_SLOT_NAME names the slot)"
            );
        };
        if caught_up == Some(true) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "Debezium has not captured PostgreSQL's changes up to {target} within {}s (slot \
                 {slot} is {}): is the connector running? (make status)",
                wait.as_secs(),
                if active { "active" } else { "not in use" }
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One `jobs cdc` at a time (two would stop each other's queries in the shared
/// session): a MySQL named lock, held by a connection of its own for the job's
/// lifetime and released by the server when the process dies.
async fn claim(
    pool: &MySqlPool,
    database: &str,
) -> Result<sqlx::pool::PoolConnection<sqlx::MySql>> {
    let mut conn = pool.acquire().await.context("cannot connect to MySQL")?;
    let (got,): (Option<i64>,) = sqlx::query_as("SELECT GET_LOCK(?, 0)")
        .bind(lock_name(database, "jobs cdc"))
        .fetch_one(&mut *conn)
        .await
        .context("cannot take the lock of jobs cdc")?;
    ensure!(
        got == Some(1),
        "jobs cdc is already running (another process holds its lock); not starting a second one"
    );
    Ok(conn)
}

#[derive(Debug, Default)]
struct Outcome {
    per_table: BTreeMap<&'static str, TableTotals>,
    /// Tables whose apply stopped (available-now), with the reason.
    failed: BTreeMap<&'static str, String>,
}

enum State {
    Running(query::Running),
    /// Waiting to restart (continuous mode), since the instant given.
    Backoff(Instant, Duration),
    Done,
}

/// Starts a query per table and follows them: logs every committed batch; restarts
/// a query whose replica was reloaded at once, and (continuous mode) a failed one
/// with backoff; in available-now mode returns when every query has ended.
async fn follow(
    settings: &Settings,
    spark: &crate::spark::SparkSession,
    (pool, pg): (&MySqlPool, &sqlx::PgPool),
    opts: &CdcOptions,
    tables: &[&'static str],
    stop: &AtomicBool,
) -> Outcome {
    // Per table: fields of old events whose column the source has dropped since.
    let mut ignored: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut outcome = Outcome::default();
    let mut states: BTreeMap<&'static str, State> = BTreeMap::new();
    let mut last_commit = query::last_commit(pool).await.unwrap_or(0);
    for table in tables {
        outcome.per_table.insert(table, TableTotals::default());
        states.insert(table, State::Backoff(Instant::now(), Duration::ZERO));
    }
    let poll = opts.trigger_interval.min(Duration::from_millis(500));
    loop {
        for (table, state) in states.iter_mut() {
            let next = match state {
                State::Backoff(since, wait) if since.elapsed() >= *wait => {
                    let skip = ignored.get(table).cloned().unwrap_or_default();
                    match query::start(settings, spark, pool, opts, table, &skip).await {
                        Ok(running) => Some(State::Running(running)),
                        Err(e) => Some(failed(opts, &mut outcome, table, &e, *wait)),
                    }
                }
                State::Running(running) => match running.check().await {
                    Ok(true) if running.reloaded(pool).await.unwrap_or(false) => {
                        tracing::info!(
                            table,
                            "the replica was reloaded by jobs replicate; restarting its apply \
                             from MySQL's offsets"
                        );
                        running.stop().await;
                        Some(State::Backoff(Instant::now(), Duration::ZERO))
                    }
                    Ok(true) => None,
                    Ok(false) => Some(State::Done),
                    Err(e) if query::replica_reloaded(&e) => {
                        tracing::info!(
                            table,
                            "{}; restarting from MySQL's offsets",
                            one_line(&format!("{e:#}"))
                        );
                        Some(State::Backoff(Instant::now(), Duration::ZERO))
                    }
                    Err(e) => match dropped_in_source(pg, opts, table, &e).await {
                        Some(columns) => {
                            tracing::warn!(
                                table,
                                ?columns,
                                "old change events carry column(s) that PostgreSQL has dropped \
                                 since (their values are gone from the source too): ignoring them"
                            );
                            ignored.entry(table).or_default().extend(columns);
                            Some(State::Backoff(Instant::now(), Duration::ZERO))
                        }
                        None => Some(failed(opts, &mut outcome, table, &e, Duration::ZERO)),
                    },
                },
                _ => None,
            };
            if let Some(next) = next {
                *state = next;
            }
        }
        match query::commits_after(pool, last_commit).await {
            Ok(commits) => {
                for c in commits {
                    c.log();
                    if let Some(t) = outcome.per_table.get_mut(c.target_table.as_str()) {
                        t.add(&c);
                    }
                    last_commit = c.commit_id;
                }
            }
            Err(e) => tracing::warn!("{e:#}"),
        }
        let all_done = states.values().all(|s| matches!(s, State::Done));
        if all_done {
            return outcome;
        }
        if stop.load(Ordering::SeqCst) {
            for state in states.values() {
                if let State::Running(r) = state {
                    r.stop().await;
                }
            }
            return outcome;
        }
        tokio::time::sleep(poll).await;
    }
}

/// The columns of an "unknown columns" failure when none of them is in the source
/// table any more (a column added, then dropped, in PostgreSQL); None otherwise.
async fn dropped_in_source(
    pg: &sqlx::PgPool,
    opts: &CdcOptions,
    table: &str,
    e: &anyhow::Error,
) -> Option<Vec<String>> {
    let columns = query::unknown_columns(e)?;
    match query::in_source(pg, &opts.source_schema, table, &columns).await {
        Ok(present) if present.is_empty() => Some(columns),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("{e:#}");
            None
        }
    }
}

/// A table's query could not start or failed: in available-now mode it is done (and
/// the run fails); in continuous mode it restarts with backoff.
fn failed(
    opts: &CdcOptions,
    outcome: &mut Outcome,
    table: &'static str,
    e: &anyhow::Error,
    last_wait: Duration,
) -> State {
    let why = query::explain(e);
    if opts.available_now {
        outcome.failed.insert(table, why);
        return State::Done;
    }
    let wait = (last_wait * 2).clamp(Duration::from_secs(2), Duration::from_secs(60));
    tracing::error!(
        table,
        "change apply stopped: {why}; restarting in {}s",
        wait.as_secs()
    );
    State::Backoff(Instant::now(), wait)
}
