//! The Kafka source every streaming job reads with, so they all read alike.

use spark_connect::SparkSession;
use spark_connect::streaming::DataStreamReader;

/// How long a Kafka fetch may wait for data the broker does not have yet. Spark's
/// executors keep their consumers between micro-batches, and a consumer leaves a fetch
/// in flight at the end of each task: the next batch's first poll waits for it, up to
/// Kafka's default of 500 ms, in every task (measured: 505 ms of a 580 ms task).
const FETCH_MAX_WAIT_MS: &str = "20";

/// A stream of `topics` from `starting` (Spark's startingOffsets JSON or a keyword),
/// at most `max_offsets_per_trigger` events per micro-batch.
pub fn source(
    spark: &SparkSession,
    bootstrap_servers: &str,
    topics: &str,
    starting: &str,
    max_offsets_per_trigger: u64,
) -> DataStreamReader {
    spark
        .read_stream()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topics)
        .option("startingOffsets", starting)
        // Events of aborted producer transactions are never read.
        .option("kafka.isolation.level", "read_committed")
        .option("kafka.fetch.max.wait.ms", FETCH_MAX_WAIT_MS)
        .option("maxOffsetsPerTrigger", &max_offsets_per_trigger.to_string())
        // Offsets that retention removed before they were read are reported in the
        // driver log rather than stopping the platform's ingest paths.
        .option("failOnDataLoss", "false")
}
