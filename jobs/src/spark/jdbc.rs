//! JDBC reads and writes as Spark options. Credentials travel only inside the
//! Spark Connect request (Spark redacts `password` in its UI and logs); they are
//! never logged here and never part of a URL.

use anyhow::Result;
use common::{MysqlSettings, PostgresSettings, Secret};
use spark_connect_rs::dataframe::SaveMode;
use spark_connect_rs::{DataFrame, SparkSession};

/// Where Spark reads from or writes to over JDBC.
#[derive(Clone)]
pub struct JdbcTarget {
    pub url: String,
    pub user: String,
    pub password: Secret,
}

impl JdbcTarget {
    pub fn postgres(pg: &PostgresSettings) -> Result<Self> {
        pg.validate()?;
        Ok(Self {
            url: pg.jdbc_url(),
            user: pg.user.clone(),
            password: pg.password()?,
        })
    }

    pub fn mysql(my: &MysqlSettings) -> Result<Self> {
        my.validate()?;
        Ok(Self {
            url: my.jdbc_url(),
            user: my.user.clone(),
            password: my.password()?,
        })
    }
}

/// How a read is split into parallel JDBC queries.
#[derive(Debug, Clone, Copy)]
pub struct Partitioning<'a> {
    pub column: &'a str,
    pub lower: i64,
    pub upper: i64,
    pub partitions: u32,
}

/// A JDBC relation (`dbtable`: a table name or a parenthesised subquery with alias).
/// `session_init` runs first on each of Spark's connections (e.g. to read as of a
/// snapshot).
pub fn read(
    spark: &SparkSession,
    target: &JdbcTarget,
    dbtable: &str,
    partitioning: Option<Partitioning<'_>>,
    fetch_size: u32,
    session_init: Option<&str>,
) -> Result<DataFrame> {
    let mut reader = spark
        .read()
        .format("jdbc")
        .option("url", &target.url)
        .option("user", &target.user)
        .option("password", target.password.expose())
        .option("dbtable", dbtable)
        .option("fetchsize", &fetch_size.to_string())
        // Timestamps without time zone stay wall-clock values end to end.
        .option("preferTimestampNTZ", "true");
    if let Some(sql) = session_init {
        reader = reader.option("sessionInitStatement", sql);
    }
    if let Some(p) = partitioning {
        reader = reader
            .option("partitionColumn", p.column)
            .option("lowerBound", &p.lower.to_string())
            .option("upperBound", &p.upper.to_string())
            .option("numPartitions", &p.partitions.to_string());
    }
    Ok(reader.load([])?)
}

/// Appends a DataFrame to an existing table (never `overwrite`, which would
/// recreate the table with Spark's generic types and no keys).
pub async fn append(
    df: DataFrame,
    target: &JdbcTarget,
    table: &str,
    batch_size: u32,
) -> Result<()> {
    df.write()
        .format("jdbc")
        .mode(SaveMode::Append)
        .option("url", &target.url)
        .option("user", &target.user)
        .option("password", target.password.expose())
        .option("dbtable", table)
        .option("batchsize", &batch_size.to_string())
        // The staging table is invisible to readers until the swap, so the
        // writers need no isolation of their own.
        .option("isolationLevel", "NONE")
        .save("")
        .await?;
    Ok(())
}

/// Spark's JDBC defaults, for the benchmark baseline only: `overwrite` mode (which
/// drops and recreates the table with generic types), the default batch size of
/// 1000, and a MySQL URL without `rewriteBatchedStatements`.
pub async fn overwrite_with_defaults(
    df: DataFrame,
    target: &JdbcTarget,
    table: &str,
) -> Result<()> {
    let url = target
        .url
        .split('?')
        .next()
        .unwrap_or(&target.url)
        .to_string()
        + "?useSSL=false&allowPublicKeyRetrieval=true";
    df.write()
        .format("jdbc")
        .mode(SaveMode::Overwrite)
        .option("url", &url)
        .option("user", &target.user)
        .option("password", target.password.expose())
        .option("dbtable", table)
        .save("")
        .await?;
    Ok(())
}
