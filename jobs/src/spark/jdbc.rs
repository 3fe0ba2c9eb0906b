//! JDBC reads and writes as Spark options. No credential travels in a plan: Spark
//! Connect renders every request's options as text (Spark UI, event logs), so the
//! jobs name the environment variable that holds the password (`passwordEnv`) and the
//! platform's connection provider on the cluster (`platform-env`, in the sink plugin)
//! reads it from the Spark processes' own environment.

use anyhow::Result;
use common::{MysqlSettings, PostgresSettings};
use spark_connect::readwriter::{DataFrameReader, DataFrameWriter};
use spark_connect::{DataFrame, SparkSession};

use super::blocking;

/// The JDBC connection provider of the platform's Spark plugin.
pub const CONNECTION_PROVIDER: &str = "platform-env";

/// Where Spark reads from or writes to over JDBC.
#[derive(Debug, Clone)]
pub struct JdbcTarget {
    pub url: String,
    pub user: String,
    /// The variable of the Spark processes' environment holding the password.
    pub password_env: &'static str,
}

impl JdbcTarget {
    pub fn postgres(pg: &PostgresSettings) -> Result<Self> {
        pg.validate()?;
        Ok(Self {
            url: pg.jdbc_url(),
            user: pg.user.clone(),
            password_env: PostgresSettings::PASSWORD_ENV,
        })
    }

    pub fn mysql(my: &MysqlSettings) -> Result<Self> {
        my.validate()?;
        Ok(Self {
            url: my.jdbc_url(),
            user: my.user.clone(),
            password_env: MysqlSettings::PASSWORD_ENV,
        })
    }

    /// The connection options every JDBC read and write carries.
    pub fn options(&self) -> [(&'static str, &str); 4] {
        [
            ("url", &self.url),
            ("user", &self.user),
            ("connectionProvider", CONNECTION_PROVIDER),
            ("passwordEnv", self.password_env),
        ]
    }

    fn reader(&self, spark: &SparkSession) -> DataFrameReader {
        self.options()
            .into_iter()
            .fold(spark.read().format("jdbc"), |r, (k, v)| r.option(k, v))
    }

    fn writer(&self, df: DataFrame) -> DataFrameWriter {
        self.options()
            .into_iter()
            .fold(df.write().format("jdbc"), |w, (k, v)| w.option(k, v))
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
/// snapshot). Only a plan: nothing is read before an action.
pub fn read(
    spark: &SparkSession,
    target: &JdbcTarget,
    dbtable: &str,
    partitioning: Option<Partitioning<'_>>,
    fetch_size: u32,
    session_init: Option<&str>,
) -> DataFrame {
    let mut reader = target
        .reader(spark)
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
    reader.load(None)
}

/// Appends a DataFrame to an existing table (never `overwrite`, which would
/// recreate the table with Spark's generic types and no keys).
pub async fn append(
    df: DataFrame,
    target: &JdbcTarget,
    table: &str,
    batch_size: u32,
) -> Result<()> {
    let writer = target
        .writer(df)
        .mode("append")
        .option("dbtable", table)
        .option("batchsize", &batch_size.to_string())
        // The staging table is invisible to readers until the swap, so the
        // writers need no isolation of their own.
        .option("isolationLevel", "NONE");
    blocking(move || writer.save(None)).await
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
    let writer = JdbcTarget {
        url,
        ..target.clone()
    }
    .writer(df)
    .mode("overwrite")
    .option("dbtable", table);
    blocking(move || writer.save(None)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_in_the_options() {
        let pg = PostgresSettings {
            host: "h".into(),
            port: 1,
            database: "d".into(),
            schema: "s".into(),
            user: "u".into(),
        };
        let t = JdbcTarget::postgres(&pg).expect("target");
        let opts = t.options();
        assert!(opts.iter().all(|(k, _)| *k != "password"));
        assert!(opts.contains(&("passwordEnv", "POSTGRES_PASSWORD")));
        assert!(opts.contains(&("connectionProvider", "platform-env")));
    }
}
