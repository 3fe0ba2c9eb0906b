//! The streaming query: started on the Spark Connect server, followed until it ends.
//!
//! The job uses a Spark Connect session id derived from the sink id, so a restarted
//! job (after a crash or kill -9) finds the query its predecessor left running on
//! the server, stops it, and starts again from the checkpoint.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::settings::check_identifier;
use spark_connect::streaming::{StreamingQuery, Trigger};
use sqlx::PgPool;

use super::events;
use crate::spark::jdbc::JdbcTarget;
use crate::spark::{SparkSession, blocking};

#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub bootstrap_servers: String,
    pub topic: String,
    /// Names the query (Spark UI), its progress rows and its default checkpoint.
    pub sink_id: String,
    pub available_now: bool,
    pub trigger_interval: Duration,
    pub max_offsets_per_trigger: u64,
    /// Spark partitions per micro-batch at least (0: one per Kafka partition).
    pub min_partitions: u32,
    /// Where Spark keeps the offsets; default: the server's
    /// `spark.sql.streaming.checkpointLocation` + the query name.
    pub checkpoint_location: Option<String>,
    pub starting_offsets: String,
    /// Payloads larger than this are quarantined unread.
    pub max_event_bytes: usize,
    /// The sink's `append` mode: no offsets, no de-duplication (benchmark baseline).
    pub plain_append: bool,
}

impl StreamOptions {
    pub fn validate(&self) -> Result<()> {
        check_identifier("--sink-id", &self.sink_id.replace('-', "_"))?;
        if !matches!(self.starting_offsets.as_str(), "earliest" | "latest") {
            bail!("--starting-offsets must be earliest or latest");
        }
        if self.trigger_interval.is_zero() {
            bail!("--trigger-interval must be positive");
        }
        if self.max_offsets_per_trigger == 0 {
            bail!("--max-offsets-per-trigger must be positive");
        }
        if self.max_event_bytes < 1024 {
            bail!("--max-event-bytes must be at least 1024");
        }
        Ok(())
    }

    pub fn query_name(&self) -> String {
        self.sink_id.replace('-', "_")
    }
}

pub async fn connect(spark: &common::SparkSettings, opts: &StreamOptions) -> Result<SparkSession> {
    let session = crate::spark::connect_named(spark, "jobs-stream", &opts.sink_id).await?;
    crate::spark::streaming::configure(&session, &[]).await?;
    Ok(session)
}

/// Stops a query of ours that a previous run of the job left active on the server.
pub async fn stop_leftover(spark: &SparkSession, name: &str) -> Result<()> {
    let s = spark.clone();
    for q in blocking(move || s.streams().active())
        .await
        .context("cannot list active queries")?
    {
        if q.name() == Some(name) {
            tracing::warn!(query = name, id = %q.id(), "stopping the query a previous run left active");
            blocking(move || q.stop())
                .await
                .context("cannot stop the leftover query")?;
        }
    }
    Ok(())
}

/// Where the query keeps its checkpoint: `--checkpoint-location`, else the Connect
/// server's `spark.sql.streaming.checkpointLocation` / the query name (as Spark
/// itself would choose; the job passes it explicitly so both agree).
pub async fn checkpoint_location(spark: &SparkSession, opts: &StreamOptions) -> Result<String> {
    crate::spark::checkpoint_dir(
        spark,
        opts.checkpoint_location.as_deref(),
        &opts.query_name(),
        "STREAM_CHECKPOINT_LOCATION",
    )
    .await
}

pub async fn start(
    spark: &SparkSession,
    sink: &JdbcTarget,
    opts: &StreamOptions,
    checkpoint: &str,
    starting_offsets: &str,
) -> Result<StreamingQuery> {
    let name = opts.query_name();
    stop_leftover(spark, &name).await?;
    let source = crate::spark::kafka::source(
        spark,
        &opts.bootstrap_servers,
        &opts.topic,
        starting_offsets,
        opts.max_offsets_per_trigger,
    );
    // Splitting a Kafka partition's offset range over several Spark tasks lets a
    // one-partition topic use every core. The sink's exactly-once bookkeeping is
    // keyed on Kafka offsets, so any split (also a different one on replay) is safe.
    let source = if opts.min_partitions > 0 {
        source.option("minPartitions", &opts.min_partitions.to_string())
    } else {
        source
    }
    .load(None);
    let stages = [
        events::raw_columns(opts.max_event_bytes),
        events::document_columns(),
        events::field_columns(),
        events::sink_columns(opts.max_event_bytes),
    ];
    let rows = stages.iter().fold(source, |df, columns| {
        df.select_expr(columns.iter().map(String::as_str).collect())
    });
    let trigger = if opts.available_now {
        Trigger::AvailableNow
    } else {
        Trigger::ProcessingTime(format!(
            "{} milliseconds",
            opts.trigger_interval.as_millis()
        ))
    };
    let writer = rows
        .write_stream()
        .format("pg-exactly-once")
        .output_mode("append")
        .query_name(&name)
        .trigger(trigger)
        .option("url", &sink.url)
        .option("user", &sink.user)
        .option("passwordEnv", sink.password_env)
        .option("sinkId", &opts.sink_id)
        .option(
            "mode",
            if opts.plain_append {
                "append"
            } else {
                "exactly-once"
            },
        )
        .option("checkpointLocation", checkpoint);
    let query = blocking(move || writer.start(""))
        .await
        .context("Spark could not start the streaming query")?;
    tracing::info!(query = %name, id = %query.id(), topic = %opts.topic, checkpoint, "streaming query started");
    Ok(query)
}

/// One micro-batch as the sink committed it (`stream_sink_commits`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Commit {
    pub commit_id: i64,
    pub epoch: i64,
    pub rows_written: i64,
    pub rows_quarantined: i64,
    pub rows_duplicate: i64,
    pub rows_skipped: i64,
}

/// The sink's commits of `sink_id` after `after` (a commit id), oldest first.
pub async fn commits_after(pool: &PgPool, sink_id: &str, after: i64) -> Result<Vec<Commit>> {
    sqlx::query_as(
        "SELECT commit_id, epoch, rows_written, rows_quarantined, rows_duplicate, rows_skipped \
         FROM stream_sink_commits WHERE sink_id = $1 AND commit_id > $2 ORDER BY commit_id",
    )
    .bind(sink_id)
    .bind(after)
    .fetch_all(pool)
    .await
    .context("cannot read the sink's commits (stream_sink_commits)")
}

/// The latest commit id of `sink_id` (0 when none).
pub async fn last_commit(pool: &PgPool, sink_id: &str) -> Result<i64> {
    let (id,): (Option<i64>,) =
        sqlx::query_as("SELECT max(commit_id) FROM stream_sink_commits WHERE sink_id = $1")
            .bind(sink_id)
            .fetch_one(pool)
            .await
            .context("cannot read the sink's commits (stream_sink_commits)")?;
    Ok(id.unwrap_or(0))
}

#[derive(Debug, Default)]
pub struct Totals {
    pub batches: u64,
    pub valid: i64,
    pub quarantined: i64,
    pub skipped: i64,
}

impl Totals {
    fn add(&mut self, c: &Commit) {
        self.batches += 1;
        self.valid += c.rows_written;
        self.quarantined += c.rows_quarantined;
        self.skipped += c.rows_skipped;
    }
}

/// Follows the query until it terminates (available-now) or `stop` fires
/// (continuous), logging each batch the sink commits (one PostgreSQL transaction per
/// batch, so a logged batch is wholly visible). Returns the totals seen.
pub async fn follow(
    query: &StreamingQuery,
    pool: &PgPool,
    opts: &StreamOptions,
    mut stop: impl FnMut() -> bool,
) -> Result<Totals> {
    let mut last = last_commit(pool, &opts.sink_id).await?;
    let mut totals = Totals::default();
    let poll = if opts.available_now {
        Duration::from_millis(500)
    } else {
        opts.trigger_interval.min(Duration::from_secs(1))
    };
    let log_new = |commits: Vec<Commit>, totals: &mut Totals, last: &mut i64| {
        for c in commits {
            tracing::info!(
                batch = c.epoch,
                written = c.rows_written,
                quarantined = c.rows_quarantined,
                duplicates = c.rows_duplicate,
                skipped_as_committed = c.rows_skipped,
                "batch committed"
            );
            totals.add(&c);
            *last = c.commit_id;
        }
    };
    loop {
        let (q, secs) = (query.clone(), poll.as_secs_f64());
        let terminated = blocking(move || q.await_termination(Some(secs)))
            .await
            .context("the streaming query failed")?
            .unwrap_or(false);
        log_new(
            commits_after(pool, &opts.sink_id, last).await?,
            &mut totals,
            &mut last,
        );
        if terminated {
            return Ok(totals);
        }
        if stop() {
            tracing::info!("stopping the streaming query");
            let q = query.clone();
            blocking(move || q.stop())
                .await
                .context("cannot stop the streaming query")?;
            // A batch interrupted by the stop commits nothing; the next run replays it.
            log_new(
                commits_after(pool, &opts.sink_id, last).await?,
                &mut totals,
                &mut last,
            );
            return Ok(totals);
        }
    }
}
