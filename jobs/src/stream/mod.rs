//! `jobs stream`: the registration events of the Kafka topic into PostgreSQL `users`,
//! by Spark Structured Streaming. Parsing and validation happen in Spark SQL
//! (`events`); the `pg-exactly-once` sink plugin on the cluster writes each
//! micro-batch exactly once and sends invalid events to `users_quarantine`. `query`
//! starts and follows the streaming query; this module owns the flags and the run
//! loop (one pass with `--available-now`, restarts with backoff in continuous mode).

pub mod events;
pub mod position;
pub mod query;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sqlx::PgPool;

pub use query::{StreamOptions, Totals};

use crate::output::one_line;
use crate::spark::jdbc::JdbcTarget;
use crate::{Settings, out};

/// Stream the registration events from Kafka into PostgreSQL `users` with Spark
/// Structured Streaming, exactly once; invalid events go to `users_quarantine`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process what the topic holds since the last checkpoint, then exit
    /// (what an Airflow run does). Without it: run until SIGTERM.
    #[arg(long)]
    available_now: bool,
    /// Micro-batch interval in continuous mode, in milliseconds
    #[arg(long, env = "STREAM_TRIGGER_INTERVAL_MS", default_value_t = 1000)]
    trigger_interval_ms: u64,
    /// Upper bound of events per micro-batch
    #[arg(
        long,
        env = "STREAM_MAX_OFFSETS_PER_TRIGGER",
        default_value_t = 200_000
    )]
    max_offsets_per_trigger: u64,
    /// Spark tasks per micro-batch at least (0: one per Kafka partition)
    #[arg(long, env = "STREAM_MIN_PARTITIONS", default_value_t = 2)]
    min_partitions: u32,
    /// Checkpoint directory as the Spark cluster sees it (default: the Connect
    /// server's spark.sql.streaming.checkpointLocation / <sink id>)
    #[arg(long, env = "STREAM_CHECKPOINT_LOCATION")]
    checkpoint_location: Option<String>,
    /// Stable name of the stream: query name, progress rows, default checkpoint
    #[arg(long, env = "STREAM_SINK_ID", default_value = "users_stream")]
    sink_id: String,
    /// Where a brand-new stream starts: earliest or latest (later runs resume from
    /// the offsets PostgreSQL holds)
    #[arg(long, env = "STREAM_STARTING_OFFSETS", default_value = "earliest")]
    starting_offsets: String,
    /// Payloads larger than this many bytes are quarantined without being parsed
    #[arg(long, env = "STREAM_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    max_event_bytes: usize,
    /// Benchmark baseline: the sink appends without its exactly-once bookkeeping
    #[arg(long, hide = true)]
    plain_append: bool,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let opts = StreamOptions {
        bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
        topic: settings.kafka.topic.clone(),
        sink_id: args.sink_id,
        available_now: args.available_now,
        trigger_interval: Duration::from_millis(args.trigger_interval_ms),
        max_offsets_per_trigger: args.max_offsets_per_trigger,
        min_partitions: args.min_partitions,
        checkpoint_location: args.checkpoint_location,
        starting_offsets: args.starting_offsets,
        max_event_bytes: args.max_event_bytes,
        plain_append: args.plain_append,
    };
    opts.validate()?;
    let sink = JdbcTarget::postgres(&settings.postgres)?;
    let pg_pool = crate::postgres::pool(&settings.postgres).await?;
    let _running = claim(&settings.postgres, &opts.sink_id).await?;
    run_loop(settings, &sink, &pg_pool, &opts).await
}

/// One `jobs stream` per sink at a time (an Airflow run next to a manual one would
/// stop each other's query): a PostgreSQL advisory lock, held by a connection of its
/// own for the job's lifetime and released by the server when the process dies.
async fn claim(pg: &common::PostgresSettings, sink_id: &str) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", pg.describe()))?;
    let (claimed,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(format!("jobs stream {sink_id}"))
        .fetch_one(&mut conn)
        .await
        .context("cannot take the stream's advisory lock")?;
    ensure!(
        claimed,
        "stream {sink_id} is already running (another `jobs stream` holds it); not starting a second one"
    );
    Ok(conn)
}

/// Available-now: one pass, any failure is the exit status (Airflow retries).
/// Continuous: a lost Spark Connect server or failed query is restarted from the
/// checkpoint with backoff, until SIGTERM or Ctrl-C.
async fn run_loop(
    settings: &Settings,
    sink: &JdbcTarget,
    pg_pool: &PgPool,
    opts: &StreamOptions,
) -> Result<()> {
    let stop = crate::spark::shutdown::requested();
    let started = Instant::now();
    let mut backoff = Duration::from_secs(2);
    loop {
        let attempt = async {
            let spark = query::connect(&settings.spark, opts).await?;
            let checkpoint = query::checkpoint_location(&spark, opts).await?;
            let starting = resume_point(settings, &spark, pg_pool, opts, &checkpoint).await?;
            let query = query::start(&spark, sink, opts, &checkpoint, &starting).await?;
            query::follow(&query, pg_pool, opts, || stop.load(Ordering::SeqCst)).await
        }
        .await;
        match attempt {
            Ok(t) => {
                out!(
                    "streamed {} batch(es): {} users written, {} events quarantined, {} skipped as already committed in {:.1}s",
                    t.batches,
                    t.valid,
                    t.quarantined,
                    t.skipped,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            Err(e) if opts.available_now || stop.load(Ordering::SeqCst) || is_refusal(&e) => {
                return Err(e);
            }
            Err(e) => {
                tracing::error!(
                    "stream interrupted: {}; restarting from the checkpoint in {}s",
                    one_line(&format!("{e:#}")),
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Decides where the query starts (see `position`) and records in PostgreSQL what it
/// must hold first. Returns Spark's `startingOffsets`.
async fn resume_point(
    settings: &Settings,
    spark: &crate::spark::SparkSession,
    pg_pool: &PgPool,
    opts: &StreamOptions,
    checkpoint: &str,
) -> Result<String> {
    let held = position::postgres_offsets(pg_pool, &opts.sink_id, &opts.topic).await?;
    let kafka = position::kafka_watermarks(&settings.kafka, &opts.topic).await?;
    let resumes = position::checkpoint_offsets(spark, checkpoint, &opts.topic).await?;
    let plan = position::plan(
        &opts.topic,
        checkpoint,
        &held,
        resumes.as_ref(),
        &kafka,
        &opts.starting_offsets,
    )
    .map_err(|e| e.context(Refusal))?;
    for note in &plan.notes {
        tracing::info!(stream = %opts.sink_id, "{note}");
    }
    position::record(pg_pool, &opts.sink_id, &opts.topic, &plan.record).await?;
    Ok(plan.starting_offsets)
}

/// Marks an error that restarting cannot fix (the operator must act).
#[derive(Debug)]
struct Refusal;

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not starting the stream")
    }
}

fn is_refusal(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Refusal>().is_some()
}
