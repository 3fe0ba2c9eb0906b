//! Session settings the streaming jobs' queries start with.

use anyhow::{Context, Result};
use spark_connect::SparkSession;

use super::blocking;

/// Spark's default checkpoint manager renames through Hadoop's FileContext, which on
/// a local filesystem forks `readlink` for every file it writes: two forks per
/// micro-batch, 50-100 ms each on a loaded machine. The FileSystem-based manager
/// renames in the JVM; either way one query writes a checkpoint at a time.
const CHECKPOINT_MANAGER: (&str, &str) = (
    "spark.sql.streaming.checkpointFileManagerClass",
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
);

/// Sets the settings every streaming job needs, then the job's own `extra` ones. Call
/// it at every query start: the settings live in the server's memory, so a restarted
/// Connect server gives the session back without them.
pub async fn configure(spark: &SparkSession, extra: &[(&'static str, &'static str)]) -> Result<()> {
    for &(key, value) in std::iter::once(&CHECKPOINT_MANAGER).chain(extra) {
        let s = spark.clone();
        blocking(move || s.conf().set(key, value))
            .await
            .with_context(|| format!("cannot set {key} on the Spark session"))?;
    }
    Ok(())
}
