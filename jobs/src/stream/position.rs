//! Where the stream resumes. PostgreSQL is the authority: the sink commits, with each
//! micro-batch, the next Kafka offset of every partition it has written
//! (`stream_sink_offsets`), so a replay of anything older writes nothing. Spark's
//! checkpoint only decides what Spark reads next, and it can be lost, moved, or
//! restored from an older or newer copy than the database. Before the query starts,
//! the job compares the two:
//!
//! - no checkpoint: the stream starts at PostgreSQL's offsets (a partition it has
//!   never seen from the earliest offset); a brand-new stream from
//!   `STREAM_STARTING_OFFSETS`, with `latest` recorded in PostgreSQL at once;
//! - a checkpoint behind PostgreSQL: fine, the sink skips what it already holds;
//! - a checkpoint ahead of PostgreSQL while Kafka still holds the events in between
//!   (a restored database, deleted progress rows): the job refuses to start, with one
//!   line saying what to do, instead of skipping them silently;
//! - a checkpoint but no position in PostgreSQL at all (a stream that predates the
//!   table): PostgreSQL adopts the checkpoint's position.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spark::{SparkSession, Value, blocking};
use anyhow::{Context, Result, bail};
use common::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;

/// Next offset per Kafka partition of one topic.
pub type Offsets = BTreeMap<i32, i64>;

/// What Kafka holds: (earliest, next) offset per partition.
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// How the query starts, and what PostgreSQL must record first.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Spark's `startingOffsets` (used only without a checkpoint).
    pub starting_offsets: String,
    /// Positions to store in PostgreSQL before the query starts.
    pub record: Offsets,
    /// Lines for the log: what was found and decided.
    pub notes: Vec<String>,
}

/// Spark's JSON form of explicit starting offsets (-2 = earliest).
fn offsets_json(topic: &str, offsets: &Offsets) -> String {
    let parts: BTreeMap<String, i64> = offsets.iter().map(|(p, o)| (p.to_string(), *o)).collect();
    serde_json::json!({ topic: parts }).to_string()
}

/// The decision described in the module doc. Pure, so every case is unit-tested.
pub fn plan(
    topic: &str,
    checkpoint_location: &str,
    postgres: &Offsets,
    checkpoint: Option<&Offsets>,
    kafka: &Watermarks,
    starting: &str,
) -> Result<Plan> {
    let mut notes = Vec::new();
    let Some(checkpoint) = checkpoint else {
        if postgres.is_empty() {
            if starting == "latest" {
                let latest: Offsets = kafka.iter().map(|(p, (_, next))| (*p, *next)).collect();
                notes.push(format!(
                    "new stream: starting at the latest offsets of {topic}, recorded in PostgreSQL"
                ));
                return Ok(Plan {
                    starting_offsets: offsets_json(topic, &latest),
                    record: latest,
                    notes,
                });
            }
            notes.push(format!(
                "new stream: starting at the earliest offsets of {topic}"
            ));
            return Ok(Plan {
                starting_offsets: "earliest".into(),
                record: Offsets::new(),
                notes,
            });
        }
        let start: Offsets = kafka
            .keys()
            .map(|p| (*p, postgres.get(p).copied().unwrap_or(-2)))
            .collect();
        notes.push(format!(
            "no checkpoint at {checkpoint_location}: resuming from the offsets PostgreSQL holds \
             ({})",
            offsets_json(topic, postgres)
        ));
        return Ok(Plan {
            starting_offsets: offsets_json(topic, &start),
            record: Offsets::new(),
            notes,
        });
    };
    if postgres.is_empty() {
        notes.push(format!(
            "PostgreSQL holds no position for this stream: adopting the checkpoint's ({})",
            offsets_json(topic, checkpoint)
        ));
        return Ok(Plan {
            starting_offsets: "earliest".into(),
            record: checkpoint.clone(),
            notes,
        });
    }
    for (p, resume) in checkpoint {
        let held = postgres.get(p).copied();
        let earliest = kafka.get(p).map_or(0, |(low, _)| *low);
        let committed = held.unwrap_or(earliest);
        if *resume > committed {
            let missing = resume - committed.max(earliest);
            if missing > 0 {
                bail!(
                    "the checkpoint at {checkpoint_location} is ahead of PostgreSQL for {topic} \
                     partition {p}: PostgreSQL has the events before offset {committed}, the \
                     checkpoint resumes at {resume}, so {missing} event(s) Kafka still holds would \
                     be skipped; delete the checkpoint directory (or set \
                     STREAM_CHECKPOINT_LOCATION to a new one) and the stream resumes from \
                     PostgreSQL's offsets"
                );
            }
            notes.push(format!(
                "{topic} partition {p}: the checkpoint resumes at {resume}, past PostgreSQL's \
                 {committed}, but Kafka no longer holds those events (earliest is {earliest})"
            ));
        } else if *resume < committed {
            notes.push(format!(
                "{topic} partition {p}: the checkpoint is {} event(s) behind PostgreSQL; the sink \
                 skips what it already holds",
                committed - resume
            ));
        }
    }
    Ok(Plan {
        starting_offsets: "earliest".into(),
        record: Offsets::new(),
        notes,
    })
}

/// The offsets PostgreSQL holds for `sink_id` and `topic`.
pub async fn postgres_offsets(pool: &PgPool, sink_id: &str, topic: &str) -> Result<Offsets> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT kafka_partition, next_offset FROM stream_sink_offsets \
         WHERE sink_id = $1 AND topic = $2",
    )
    .bind(sink_id)
    .bind(topic)
    .fetch_all(pool)
    .await
    .context("cannot read the stream's offsets in PostgreSQL (stream_sink_offsets)")?;
    Ok(rows.into_iter().collect())
}

/// Stores positions the sink has not recorded yet (never moves one).
pub async fn record(pool: &PgPool, sink_id: &str, topic: &str, offsets: &Offsets) -> Result<()> {
    for (p, next) in offsets {
        sqlx::query(
            "INSERT INTO stream_sink_offsets (sink_id, topic, kafka_partition, next_offset) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(sink_id)
        .bind(topic)
        .bind(p)
        .bind(next)
        .execute(pool)
        .await
        .context("cannot record the stream's offsets in PostgreSQL")?;
    }
    Ok(())
}

/// Earliest and next offset of every partition of `topic`.
pub async fn kafka_watermarks(kafka: &KafkaSettings, topic: &str) -> Result<Watermarks> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = kafka
        .client_config(timeout)
        .set("isolation.level", "read_committed")
        .create()
        .context("cannot create a Kafka consumer")?;
    let topic = topic.to_string();
    let bootstrap = kafka.bootstrap_servers.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("cannot read the metadata of topic {topic} at {bootstrap}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            bail!("Kafka topic {topic} does not exist at {bootstrap}");
        }
        partitions
            .into_iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map(|w| (p, w))
                    .with_context(|| format!("cannot read the offsets of {topic} partition {p}"))
            })
            .collect()
    })
    .await
    .context("the Kafka offset lookup panicked")?
}

/// Where the checkpoint resumes: the end offsets of its last committed batch (the
/// initial offsets when none was committed); `None` when there is no checkpoint.
/// Read through Spark, which sees the checkpoint's file system wherever it is.
pub async fn checkpoint_offsets(
    spark: &SparkSession,
    location: &str,
    topic: &str,
) -> Result<Option<Offsets>> {
    let Some(commits) = list_files(spark, &format!("{location}/commits")).await? else {
        return Ok(None);
    };
    let last = commits.iter().filter_map(|f| f.parse::<u64>().ok()).max();
    let file = match last {
        Some(batch) => format!("{location}/offsets/{batch}"),
        None => format!("{location}/sources/0/0"),
    };
    let Some(text) = read_text(spark, &file).await? else {
        return Ok(None);
    };
    parse_offsets(&text, topic)
        .with_context(|| format!("cannot read the Kafka offsets in checkpoint file {file}"))
        .map(Some)
}

/// The offsets of `topic` in a checkpoint file (its last JSON line).
pub fn parse_offsets(text: &str, topic: &str) -> Result<Offsets> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no offsets in it")?;
    let all: BTreeMap<String, BTreeMap<String, i64>> =
        serde_json::from_str(line.trim()).context("not a Kafka offsets record")?;
    let Some(partitions) = all.get(topic) else {
        bail!(
            "it holds offsets of {:?}, not of {topic}",
            all.keys().collect::<Vec<_>>()
        );
    };
    partitions
        .iter()
        .map(|(p, o)| Ok((p.parse::<i32>().context("bad partition")?, *o)))
        .collect()
}

fn path_missing(e: &anyhow::Error) -> bool {
    let s = format!("{e:#}");
    s.contains("PATH_NOT_FOUND") || s.contains("does not exist")
}

/// The first column of every row as text.
fn texts(rows: Vec<spark_connect::row::Row>) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match r.get(0) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Names of the files of a directory, or `None` when it does not exist.
async fn list_files(spark: &SparkSession, dir: &str) -> Result<Option<Vec<String>>> {
    let df = spark
        .read()
        .format("text")
        .option("wholetext", "true")
        .load(Some(dir))
        .select_expr(vec!["input_file_name() AS f"]);
    match blocking(move || df.collect()).await {
        Ok(rows) => Ok(Some(
            texts(rows)
                .iter()
                .filter_map(|f| f.rsplit('/').next().map(str::to_string))
                .collect(),
        )),
        Err(e) if path_missing(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot list {dir} through Spark")),
    }
}

/// A whole text file, or `None` when it does not exist.
async fn read_text(spark: &SparkSession, file: &str) -> Result<Option<String>> {
    let df = spark
        .read()
        .format("text")
        .option("wholetext", "true")
        .load(Some(file));
    match blocking(move || df.collect()).await {
        Ok(rows) => Ok(texts(rows).into_iter().next()),
        Err(e) if path_missing(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {file} through Spark")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(i32, i64)]) -> Offsets {
        pairs.iter().copied().collect()
    }

    fn kafka(pairs: &[(i32, i64, i64)]) -> Watermarks {
        pairs.iter().map(|(p, l, h)| (*p, (*l, *h))).collect()
    }

    const T: &str = "events";

    #[test]
    fn a_new_stream_starts_where_asked_and_records_latest() {
        let k = kafka(&[(0, 0, 100), (1, 5, 50)]);
        let p = plan(T, "/ck", &Offsets::new(), None, &k, "earliest").expect("plan");
        assert_eq!(p.starting_offsets, "earliest");
        assert!(p.record.is_empty());
        let p = plan(T, "/ck", &Offsets::new(), None, &k, "latest").expect("plan");
        assert_eq!(p.starting_offsets, r#"{"events":{"0":100,"1":50}}"#);
        assert_eq!(p.record, offsets(&[(0, 100), (1, 50)]));
    }

    #[test]
    fn without_a_checkpoint_the_stream_resumes_from_postgres() {
        let k = kafka(&[(0, 0, 200), (1, 0, 10)]);
        let p = plan(T, "/ck", &offsets(&[(0, 100)]), None, &k, "latest").expect("plan");
        // a partition PostgreSQL never saw starts at its earliest offset
        assert_eq!(p.starting_offsets, r#"{"events":{"0":100,"1":-2}}"#);
        assert!(p.record.is_empty());
    }

    #[test]
    fn a_checkpoint_behind_postgres_is_fine() {
        let k = kafka(&[(0, 0, 200)]);
        let p = plan(
            T,
            "/ck",
            &offsets(&[(0, 150)]),
            Some(&offsets(&[(0, 100)])),
            &k,
            "earliest",
        )
        .expect("plan");
        assert!(p.notes[0].contains("50 event(s) behind"), "{:?}", p.notes);
    }

    #[test]
    fn a_checkpoint_ahead_of_postgres_is_refused_while_kafka_has_the_events() {
        let k = kafka(&[(0, 0, 200)]);
        let e = plan(
            T,
            "/ck",
            &offsets(&[(0, 100)]),
            Some(&offsets(&[(0, 150)])),
            &k,
            "earliest",
        )
        .expect_err("gap");
        let msg = e.to_string();
        assert!(msg.contains("ahead of PostgreSQL"), "{msg}");
        assert!(msg.contains("50 event(s)"), "{msg}");
        assert!(msg.contains("delete the checkpoint directory"), "{msg}");
        // the events are gone from Kafka: nothing to recover, so carry on
        let k = kafka(&[(0, 160, 200)]);
        let p = plan(
            T,
            "/ck",
            &offsets(&[(0, 100)]),
            Some(&offsets(&[(0, 150)])),
            &k,
            "earliest",
        )
        .expect("plan");
        assert!(p.notes[0].contains("no longer holds"), "{:?}", p.notes);
    }

    #[test]
    fn a_checkpoint_without_any_postgres_position_is_adopted() {
        let k = kafka(&[(0, 0, 200)]);
        let p = plan(
            T,
            "/ck",
            &Offsets::new(),
            Some(&offsets(&[(0, 150)])),
            &k,
            "earliest",
        )
        .expect("plan");
        assert_eq!(p.record, offsets(&[(0, 150)]));
    }

    #[test]
    fn checkpoint_files_are_parsed() {
        let offsets_file = "v1\n{\"batchWatermarkMs\":0}\n{\"events\":{\"0\":106,\"1\":7}}";
        assert_eq!(
            parse_offsets(offsets_file, T).expect("parse"),
            offsets(&[(0, 106), (1, 7)])
        );
        let initial = "\u{0}v1\n{\"events\":{\"0\":0}}";
        assert_eq!(
            parse_offsets(initial, T).expect("parse"),
            offsets(&[(0, 0)])
        );
        assert!(parse_offsets(offsets_file, "other").is_err());
    }
}
