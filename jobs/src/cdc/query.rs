//! One table's streaming query: where it starts (MySQL's offsets), its plan, and what
//! the sink committed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use spark_connect::streaming::{StreamingQuery, Trigger};
use sqlx::MySqlPool;

use super::changes::{self, ReplicaColumn};
use crate::Settings;
use crate::mysql::staging::lock_name;
use crate::spark::jdbc::JdbcTarget;
use crate::spark::{SparkSession, blocking};
use crate::stream::position::{Offsets, kafka_watermarks};

#[derive(Debug, Clone)]
pub struct CdcOptions {
    pub topic_prefix: String,
    pub source_schema: String,
    pub available_now: bool,
    pub trigger_interval: Duration,
    pub max_offsets_per_trigger: u64,
    pub checkpoint_location: Option<String>,
    pub lock_wait_secs: u64,
}

impl CdcOptions {
    pub fn topic(&self, table: &str) -> String {
        format!("{}.{}.{table}", self.topic_prefix, self.source_schema)
    }
}

/// The sink id (progress rows, query name) of a table's apply.
pub fn sink_id(table: &str) -> String {
    format!("cdc_{table}")
}

/// The replica's columns as MySQL has them, in table order.
pub async fn replica_columns(pool: &MySqlPool, table: &str) -> Result<Vec<ReplicaColumn>> {
    let columns: Vec<ReplicaColumn> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR) AS name, CAST(DATA_TYPE AS CHAR) AS data_type, \
         IS_NULLABLE = 'YES' AS nullable, COLUMN_KEY = 'PRI' AS primary_key, \
         CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED) AS max_chars, \
         CAST(NUMERIC_PRECISION AS SIGNED) AS `precision`, \
         CAST(NUMERIC_SCALE AS SIGNED) AS scale \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .with_context(|| format!("cannot read the columns of MySQL table {table}"))?;
    if columns.is_empty() {
        bail!("MySQL table {table} does not exist (make up runs the MySQL init)");
    }
    if !columns.iter().any(|c| c.primary_key) {
        bail!("MySQL table {table} has no primary key; change events are applied by key");
    }
    if let Some(c) = columns.iter().find(|c| {
        !c.name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    }) {
        bail!(
            "MySQL table {table}: column name {:?} is not a plain identifier",
            c.name
        );
    }
    Ok(columns)
}

/// MySQL's position for the sink: next offset per partition, and the generation.
async fn progress(pool: &MySqlPool, sink_id: &str, topic: &str) -> Result<(Offsets, i64)> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT kafka_partition, next_offset, generation FROM cdc_sink_offsets \
         WHERE sink_id = ? AND topic = ?",
    )
    .bind(sink_id)
    .bind(topic)
    .fetch_all(pool)
    .await
    .context("cannot read the change apply's offsets in MySQL (cdc_sink_offsets)")?;
    let generation = rows.iter().map(|r| r.2).max().unwrap_or(0);
    Ok((
        rows.into_iter().map(|(p, o, _)| (p, o)).collect(),
        generation,
    ))
}

/// Spark's startingOffsets: MySQL's next offset per partition, the earliest (-2) where
/// it holds none. Also the partitions whose unapplied events Kafka no longer holds.
pub fn starting_offsets(
    topic: &str,
    held: &Offsets,
    kafka: &BTreeMap<i32, (i64, i64)>,
) -> (String, Vec<(i32, i64, i64)>) {
    let mut lost = Vec::new();
    let start: BTreeMap<String, i64> = kafka
        .iter()
        .map(|(p, (low, _))| {
            let next = held.get(p).copied().unwrap_or(-2);
            if next >= 0 && next < *low {
                lost.push((*p, next, *low));
            }
            (p.to_string(), if next < *low { -2 } else { next })
        })
        .collect();
    (serde_json::json!({ topic: start }).to_string(), lost)
}

/// A started query of one table.
pub struct Running {
    pub table: &'static str,
    query: StreamingQuery,
    /// The table's progress generation the query started from.
    generation: i64,
}

impl Running {
    /// Ok(true) while active, Ok(false) once ended normally, Err when it failed.
    pub async fn check(&self) -> Result<bool> {
        let q = self.query.clone();
        if blocking(move || q.is_active())
            .await
            .context("cannot read the state of the streaming query")?
        {
            return Ok(true);
        }
        let q = self.query.clone();
        match blocking(move || q.exception())
            .await
            .context("cannot read the streaming query's error")?
        {
            Some(e) => bail!("{}", e.message),
            None => Ok(false),
        }
    }

    /// True when `jobs replicate` reloaded the table since the query started. The
    /// sink notices it at its next commit, but a table without new changes commits
    /// nothing, so the job looks too: the reload's lost changes must be replayed now.
    pub async fn reloaded(&self, pool: &MySqlPool) -> Result<bool> {
        let (generation,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(generation) FROM cdc_sink_offsets WHERE sink_id = ?")
                .bind(sink_id(self.table))
                .fetch_one(pool)
                .await
                .context("cannot read the change apply's generation (cdc_sink_offsets)")?;
        Ok(generation.is_some_and(|g| g != self.generation))
    }

    pub async fn stop(&self) {
        let q = self.query.clone();
        if let Err(e) = blocking(move || q.stop()).await {
            tracing::warn!(table = self.table, "cannot stop the streaming query: {e:#}");
        }
    }
}

/// Starts the query of `table` from the position MySQL holds.
pub async fn start(
    settings: &Settings,
    spark: &SparkSession,
    pool: &MySqlPool,
    opts: &CdcOptions,
    table: &'static str,
    ignored: &[String],
) -> Result<Running> {
    let sink_id = sink_id(table);
    crate::spark::streaming::configure(spark, &[]).await?;
    crate::stream::query::stop_leftover(spark, &sink_id).await?;
    let columns = replica_columns(pool, table).await?;
    let topic = opts.topic(table);
    let kafka = kafka_watermarks(&settings.kafka, &topic).await.with_context(|| {
        format!(
            "no change topic for table {table}: is the Debezium connector registered and running \
             (make status)?"
        )
    })?;
    let (held, generation) = progress(pool, &sink_id, &topic).await?;
    let (starting, lost) = starting_offsets(&topic, &held, &kafka);
    for (p, next, low) in lost {
        tracing::error!(
            table,
            "{topic} partition {p}: Kafka no longer holds offsets {next}..{low} that were never \
             applied; the replica may miss those changes: run `jobs replicate --table {table}`"
        );
    }
    let checkpoint = format!(
        "{}/{table}/{}",
        crate::spark::checkpoint_dir(
            spark,
            opts.checkpoint_location.as_deref(),
            "cdc",
            "CDC_CHECKPOINT_LOCATION"
        )
        .await?,
        uuid::Uuid::new_v4().simple()
    );
    let source = crate::spark::kafka::source(
        spark,
        &settings.kafka.bootstrap_servers,
        &topic,
        &starting,
        opts.max_offsets_per_trigger,
    )
    .load(None);
    let stages = [
        changes::envelope_columns(),
        changes::image_columns(),
        changes::sink_columns(&columns, ignored),
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
    let target = JdbcTarget::mysql(&settings.mysql)?;
    let writer = rows
        .write_stream()
        .format("pg-exactly-once")
        .output_mode("append")
        .query_name(&sink_id)
        .trigger(trigger)
        .option("write", "replica")
        .option("url", &target.url)
        .option("user", &target.user)
        .option("passwordEnv", target.password_env)
        .option("sinkId", &sink_id)
        .option("table", table)
        .option("generation", &generation.to_string())
        .option("lockName", &lock_name(&settings.mysql.database, table))
        .option("lockWaitSeconds", &opts.lock_wait_secs.max(1).to_string())
        .option("checkpointLocation", &checkpoint);
    let query = blocking(move || writer.start(""))
        .await
        .with_context(|| format!("Spark could not start the change apply of {table}"))?;
    tracing::info!(table, %topic, starting = %starting, generation, "change apply started");
    Ok(Running {
        table,
        query,
        generation,
    })
}

/// What the sink committed for one batch (`cdc_sink_commits`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Commit {
    pub commit_id: i64,
    pub target_table: String,
    pub epoch: i64,
    pub changes: i64,
    pub upserted: i64,
    pub deleted: i64,
    pub quarantined: i64,
    pub skipped: i64,
}

impl Commit {
    pub fn log(&self) {
        tracing::info!(
            table = %self.target_table,
            batch = self.epoch,
            changes = self.changes,
            upserted = self.upserted,
            deleted = self.deleted,
            quarantined = self.quarantined,
            skipped = self.skipped,
            "changes committed"
        );
    }
}

#[derive(Debug, Default, Clone)]
pub struct TableTotals {
    pub changes: i64,
    pub upserted: i64,
    pub deleted: i64,
    pub quarantined: i64,
    pub skipped: i64,
}

impl TableTotals {
    pub fn add(&mut self, c: &Commit) {
        self.changes += c.changes;
        self.upserted += c.upserted;
        self.deleted += c.deleted;
        self.quarantined += c.quarantined;
        self.skipped += c.skipped;
    }
}

pub async fn last_commit(pool: &MySqlPool) -> Result<i64> {
    let (id,): (Option<i64>,) = sqlx::query_as("SELECT MAX(commit_id) FROM cdc_sink_commits")
        .fetch_one(pool)
        .await
        .context("cannot read cdc_sink_commits")?;
    Ok(id.unwrap_or(0))
}

pub async fn commits_after(pool: &MySqlPool, after: i64) -> Result<Vec<Commit>> {
    sqlx::query_as(
        "SELECT commit_id, CAST(target_table AS CHAR) AS target_table, epoch, changes, upserted, \
         deleted, quarantined, skipped FROM cdc_sink_commits WHERE commit_id > ? \
         ORDER BY commit_id",
    )
    .bind(after)
    .fetch_all(pool)
    .await
    .context("cannot read the change apply's commits (cdc_sink_commits)")
}

/// The sink's own line in a query failure (Spark wraps it in stack traces).
pub fn explain(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let from = text.find("pg-exactly-once: ").unwrap_or(0);
    let line = text[from..].lines().next().unwrap_or(&text);
    crate::output::one_line(line)
}

/// The columns named by the sink's "unknown columns" failure, if that is the failure.
pub fn unknown_columns(e: &anyhow::Error) -> Option<Vec<String>> {
    let text = format!("{e:#}");
    let start = text.find(" has column(s) ")? + " has column(s) ".len();
    let end = start + text[start..].find(" that the MySQL replica does not have")?;
    Some(text[start..end].split(", ").map(str::to_string).collect())
}

/// Which of `columns` the source table has now (PostgreSQL's information_schema).
pub async fn in_source(
    pg: &sqlx::PgPool,
    schema: &str,
    table: &str,
    columns: &[String],
) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND column_name = ANY($3)",
    )
    .bind(schema)
    .bind(table)
    .bind(columns)
    .fetch_all(pg)
    .await
    .with_context(|| format!("cannot read the columns of PostgreSQL table {table}"))?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// The failure the sink reports when `jobs replicate` reloaded the table.
pub fn replica_reloaded(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("was reloaded by jobs replicate")
}

/// Logs change topics of tables the job does not replicate (their events are not
/// applied anywhere).
pub async fn warn_unreplicated_topics(kafka: &KafkaSettings, opts: &CdcOptions, tables: &[&str]) {
    let prefix = format!("{}.{}.", opts.topic_prefix, opts.source_schema);
    let consumer: BaseConsumer = match kafka.client_config(Duration::from_secs(10)).create() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot list Kafka topics: {e}");
            return;
        }
    };
    let known: Vec<String> = common::schema::TABLES
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let listed = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .map(|t| t.name().to_string())
                    .collect::<Vec<_>>()
            })
    })
    .await;
    let Ok(Ok(topics)) = listed else {
        tracing::warn!("cannot list Kafka topics");
        return;
    };
    for topic in topics {
        if let Some(table) = topic.strip_prefix(&prefix) {
            if !known.iter().any(|k| k == table) {
                tracing::warn!(%topic, "change topic of table {table}, which has no MySQL replica: its changes are not applied");
            } else if !tables.contains(&table) {
                tracing::info!(%topic, "not applied in this run (--table)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_where_mysql_left_off_else_at_the_earliest() {
        let held: Offsets = [(0, 42)].into();
        let kafka = [(0, (0, 100)), (1, (5, 9))].into();
        let (json, lost) = starting_offsets("pg.public.users", &held, &kafka);
        assert_eq!(json, r#"{"pg.public.users":{"0":42,"1":-2}}"#);
        assert!(lost.is_empty());
    }

    #[test]
    fn the_columns_of_an_unknown_columns_failure_are_read_back() {
        let e = anyhow::anyhow!(
            "x: pg-exactly-once: table t: the change event at a[0]@1 has column(s) b, c that \
             the MySQL replica does not have; ..."
        );
        assert_eq!(unknown_columns(&e), Some(vec!["b".into(), "c".into()]));
        assert_eq!(unknown_columns(&anyhow::anyhow!("other")), None);
    }

    #[test]
    fn offsets_removed_by_retention_are_reported() {
        let held: Offsets = [(0, 3)].into();
        let kafka = [(0, (10, 100))].into();
        let (json, lost) = starting_offsets("t", &held, &kafka);
        assert_eq!(json, r#"{"t":{"0":-2}}"#);
        assert_eq!(lost, vec![(0, 3, 10)]);
    }
}
