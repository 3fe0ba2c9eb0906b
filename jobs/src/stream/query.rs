//! The streaming query: started on the Spark Connect server, followed until it ends.
//!
//! The job uses a Spark Connect session id derived from the sink id, so a restarted
//! job (after a crash or kill -9) finds the query its predecessor left running on
//! the server, stops it, and starts again from the checkpoint.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::settings::check_identifier;
use spark_connect_rs::SparkSession;
use spark_connect_rs::streaming::{OutputMode, StreamingQuery, Trigger};
use sqlx::PgPool;

use super::events;
use crate::spark::jdbc::JdbcTarget;

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
        Ok(())
    }

    pub fn query_name(&self) -> String {
        self.sink_id.replace('-', "_")
    }
}

/// Counts of one committed micro-batch, read from the sink's progress table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCounts {
    pub batch_id: i64,
    pub valid: i64,
    pub quarantined: i64,
}

pub async fn connect(remote: &str, opts: &StreamOptions) -> Result<SparkSession> {
    crate::spark::connect_named_one(remote, "jobs-stream", &opts.sink_id).await
}

/// Stops a query of ours that a previous run of the job left active on the server.
async fn stop_leftover(spark: &SparkSession, name: &str) -> Result<()> {
    for q in spark
        .streams()
        .active()
        .await
        .context("cannot list active queries")?
    {
        if q.name().as_deref() == Some(name) {
            tracing::warn!(query = name, id = %q.id(), "stopping the query a previous run left active");
            q.stop().await.context("cannot stop the leftover query")?;
        }
    }
    Ok(())
}

pub async fn start(
    spark: &SparkSession,
    sink: &JdbcTarget,
    opts: &StreamOptions,
) -> Result<StreamingQuery> {
    let name = opts.query_name();
    stop_leftover(spark, &name).await?;
    let source = spark
        .read_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", &opts.bootstrap_servers)
        .option("subscribe", &opts.topic)
        .option("startingOffsets", &opts.starting_offsets)
        .option(
            "maxOffsetsPerTrigger",
            &opts.max_offsets_per_trigger.to_string(),
        )
        // Offsets that retention removed before we read them are reported in the
        // driver log rather than stopping the platform's only ingest path.
        .option("failOnDataLoss", "false");
    // Splitting a Kafka partition's offset range over several Spark tasks lets a
    // one-partition topic use every core; the split is a pure function of the
    // batch's offsets, so a replayed batch is partitioned the same way.
    let source = if opts.min_partitions > 0 {
        source.option("minPartitions", &opts.min_partitions.to_string())
    } else {
        source
    }
    .load(None)?;
    // Map-only transformations: a replayed batch has the same rows in the same
    // partitions, which the sink's exactly-once bookkeeping relies on.
    let rows = source
        .select_expr(events::raw_columns())
        .select_expr(events::parsed_columns())
        .select_expr(events::sink_columns());
    let trigger = if opts.available_now {
        Trigger::AvailableNow(true)
    } else {
        Trigger::ProcessingTimeInterval(format!(
            "{} milliseconds",
            opts.trigger_interval.as_millis()
        ))
    };
    let mut writer = rows
        .write_stream()
        .format("pg-exactly-once")
        .output_mode(OutputMode::Append)
        .query_name(&name)
        .trigger(trigger)
        .option("url", &sink.url)
        .option("user", &sink.user)
        .option("password", sink.password.expose())
        .option("sinkId", &opts.sink_id);
    if let Some(dir) = &opts.checkpoint_location {
        writer = writer.option("checkpointLocation", dir);
    }
    let query = writer
        .start(None)
        .await
        .context("Spark could not start the streaming query")?;
    tracing::info!(query = %name, id = %query.id(), topic = %opts.topic, "streaming query started");
    Ok(query)
}

/// Batches in `(after, upto]` as the sink recorded them, oldest first. Only ask for
/// batches Spark has completed: the sink commits each partition on its own.
pub async fn committed_batches(
    pool: &PgPool,
    sink_id: &str,
    after: i64,
    upto: i64,
) -> Result<Vec<BatchCounts>> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT batch_id, sum(rows_written)::bigint, sum(rows_quarantined)::bigint \
         FROM stream_sink_progress WHERE sink_id = $1 AND batch_id > $2 AND batch_id <= $3 \
         GROUP BY batch_id ORDER BY batch_id",
    )
    .bind(sink_id)
    .bind(after)
    .bind(upto)
    .fetch_all(pool)
    .await
    .context("cannot read the sink's progress table")?;
    Ok(rows
        .into_iter()
        .map(|(batch_id, valid, quarantined)| BatchCounts {
            batch_id,
            valid,
            quarantined,
        })
        .collect())
}

/// The latest batch id committed by the sink (-1 when none).
pub async fn last_committed(pool: &PgPool, sink_id: &str) -> Result<i64> {
    let (id,): (Option<i64>,) =
        sqlx::query_as("SELECT max(batch_id) FROM stream_sink_progress WHERE sink_id = $1")
            .bind(sink_id)
            .fetch_one(pool)
            .await
            .context("cannot read the sink's progress table")?;
    Ok(id.unwrap_or(-1))
}

/// Spark's latest progress report, if there is one yet.
async fn last_progress(query: &StreamingQuery) -> Option<serde_json::Value> {
    // The client panics (unwrap on an empty list) before the first batch has reported
    // progress; the call runs in a task so that panic only means "no progress yet".
    quiet_client_panics();
    let q = query.clone();
    tokio::spawn(async move { q.last_progress().await })
        .await
        .ok()?
        .ok()
}

/// Keeps the expected panic of `last_progress` out of the logs; any other panic is
/// reported as usual.
fn quiet_client_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_client = info.location().is_some_and(|l| {
                l.file().contains("spark-connect-rs") && l.file().contains("streaming")
            });
            if !in_client {
                previous(info);
            }
        }));
    });
}

pub struct Totals {
    pub batches: u64,
    pub valid: i64,
    pub quarantined: i64,
}

/// Follows the query until it terminates (available-now) or `stop` fires
/// (continuous), logging each committed batch. Returns the totals seen.
pub async fn follow(
    query: &StreamingQuery,
    pool: &PgPool,
    opts: &StreamOptions,
    mut stop: impl FnMut() -> bool,
) -> Result<Totals> {
    let mut last = last_committed(pool, &opts.sink_id).await?;
    let mut totals = Totals {
        batches: 0,
        valid: 0,
        quarantined: 0,
    };
    let poll = if opts.available_now {
        Duration::from_millis(500)
    } else {
        opts.trigger_interval.min(Duration::from_secs(1))
    };
    loop {
        let terminated = query
            .await_termination(Some(poll.as_millis() as i64))
            .await
            .context("the streaming query failed")?;
        // Batches up to the latest one Spark reports as done (all of them once the
        // query has terminated).
        let progress = last_progress(query).await;
        let done = progress
            .as_ref()
            .and_then(|p| p.get("batchId")?.as_i64())
            .unwrap_or(-1);
        let upto = if terminated { i64::MAX } else { done };
        for b in committed_batches(pool, &opts.sink_id, last, upto).await? {
            let duration = progress
                .as_ref()
                .filter(|_| b.batch_id == done)
                .and_then(|p| p.pointer("/durationMs/triggerExecution")?.as_i64());
            tracing::info!(
                batch = b.batch_id,
                input_rows = b.valid + b.quarantined,
                valid_rows = b.valid,
                quarantined_rows = b.quarantined,
                duration_ms = duration
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                "batch committed"
            );
            totals.batches += 1;
            totals.valid += b.valid;
            totals.quarantined += b.quarantined;
            last = b.batch_id;
        }
        if terminated {
            return Ok(totals);
        }
        if stop() {
            tracing::info!("stopping the streaming query");
            query
                .stop()
                .await
                .context("cannot stop the streaming query")?;
            // Count what the batches until the stop committed (an interrupted batch is
            // replayed by the next run, which writes only its missing partitions).
            for b in committed_batches(pool, &opts.sink_id, last, i64::MAX).await? {
                totals.batches += 1;
                totals.valid += b.valid;
                totals.quarantined += b.quarantined;
            }
            return Ok(totals);
        }
    }
}
