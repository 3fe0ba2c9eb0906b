use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};
use common::schema::{self, TABLES};
use common::{KafkaSettings, MysqlSettings, PostgresSettings, SparkSettings};
use jobs::check::{self, Service, Targets};
use jobs::jdbc::JdbcTarget;
use jobs::{marts, replicate, stream};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::{MySqlPool, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::signal::unix::SignalKind;

/// Writes a line to stdout; a closed pipe (`jobs summary | head`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The platform's jobs: each one sends its work to the Spark cluster over Spark
/// Connect. Settings come from the environment / .env; flags override them.
/// Passwords are read from the environment only (POSTGRES_PASSWORD, MYSQL_PASSWORD).
#[derive(Debug, Parser)]
#[command(name = "jobs", version, about)]
struct Cli {
    #[command(flatten)]
    postgres: PostgresSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
    #[command(flatten)]
    spark: SparkSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that every service is usable: a query on PostgreSQL and MySQL as the
    /// platform user, a Kafka produce/consume round trip, a Spark Connect query.
    Check {
        /// Keep retrying for up to this many seconds before giving up
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Only these services (default: all)
        #[arg(long = "service", value_enum)]
        services: Vec<Service>,
    },
    /// Replicate PostgreSQL tables to MySQL through Spark, verified by row count
    /// and content checksum, swapped in atomically.
    Replicate {
        /// Only these tables (default: all five)
        #[arg(long = "table", value_parser = PossibleValuesParser::new(TABLES.map(|t| t.name)))]
        tables: Vec<String>,
        /// Parallel JDBC reads per table, split on the primary key
        #[arg(long, env = "REPLICATE_PARTITIONS", default_value_t = 4)]
        partitions: u32,
        /// Rows per JDBC write batch into MySQL
        #[arg(long, env = "REPLICATE_BATCH_SIZE", default_value_t = 10_000)]
        batch_size: u32,
        /// Rows per JDBC fetch from PostgreSQL
        #[arg(long, env = "REPLICATE_FETCH_SIZE", default_value_t = 10_000)]
        fetch_size: u32,
        /// Benchmark baseline: Spark's default JDBC options into <table>__baseline
        #[arg(long, hide = true)]
        baseline: bool,
    },
    /// Stream the registration events from Kafka into PostgreSQL `users` with Spark
    /// Structured Streaming, exactly once; invalid events go to `users_quarantine`.
    Stream {
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
        /// Where a stream without a checkpoint starts: earliest or latest
        #[arg(long, env = "STREAM_STARTING_OFFSETS", default_value = "earliest")]
        starting_offsets: String,
    },
    /// Print row counts: each table in PostgreSQL and MySQL, the marts, the quarantine.
    Summary,
    /// Build the analytical marts in MySQL from the MySQL replicas, through Spark.
    Marts {
        /// Only these marts (default: all three)
        #[arg(long = "mart", value_parser = PossibleValuesParser::new(schema::MARTS))]
        marts: Vec<String>,
        /// Rows per JDBC write batch into MySQL
        #[arg(long, env = "MARTS_BATCH_SIZE", default_value_t = 10_000)]
        batch_size: u32,
        /// Parallel JDBC reads per MySQL replica, split on the primary key. The marts
        /// and their seven source reads already run side by side, which fills two
        /// cores; raise it for a bigger cluster and larger replicas
        #[arg(long, env = "MARTS_PARTITIONS", default_value_t = 1)]
        partitions: u32,
        /// Benchmark baseline: Spark's default JDBC options into <mart>__baseline
        #[arg(long, hide = true)]
        baseline: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    common::load_dotenv();
    common::telemetry::init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!("{e:?}");
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Spark errors carry whole JVM stack traces; the user gets the first line of each
/// cause (the full text is logged at debug level).
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    let mut s: String = first.chars().take(600).collect();
    if s.len() < first.len() {
        s.push('…');
    }
    s
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { wait, ref services } => {
            let all = [
                Service::Postgres,
                Service::Mysql,
                Service::Kafka,
                Service::SparkConnect,
            ];
            let services = if services.is_empty() {
                &all[..]
            } else {
                services
            };
            let targets = Targets {
                postgres: &cli.postgres,
                mysql: &cli.mysql,
                kafka: &cli.kafka,
                spark: &cli.spark,
            };
            check::check_all(&targets, services, Duration::from_secs(wait))
                .await
                .map_err(|(service, e)| {
                    e.context(format!("service={} is not usable", service.name()))
                })
        }
        Command::Replicate {
            ref tables,
            partitions,
            batch_size,
            fetch_size,
            baseline,
        } => {
            let tables: Vec<_> = if tables.is_empty() {
                TABLES.iter().collect()
            } else {
                tables
                    .iter()
                    .filter_map(|name| schema::table(name))
                    .collect()
            };
            let source = JdbcTarget::postgres(&cli.postgres)?;
            let sink = JdbcTarget::mysql(&cli.mysql)?;
            let pg_pool = pg_pool(&cli.postgres).await?;
            let mysql_pool = mysql_pool(&cli.mysql).await?;
            let spark = if baseline {
                // A new session per run, as the seed's spark-submit runs had.
                vec![jobs::spark::connect(&cli.spark.remote, "jobs-replicate-baseline").await?]
            } else {
                let key = format!("jobs-replicate|{}|{}", source.url, sink.url);
                jobs::spark::connect_named(&cli.spark.remote, "jobs-replicate", &key, tables.len())
                    .await?
            };
            let started = Instant::now();
            let ctx = replicate::Job {
                spark: &spark,
                pg_pool: &pg_pool,
                mysql_pool: &mysql_pool,
                source: &source,
                sink: &sink,
                tuning: replicate::Tuning {
                    partitions: partitions.max(1),
                    batch_size: batch_size.max(1),
                    fetch_size: fetch_size.max(1),
                },
            };
            if baseline {
                for r in replicate::run_baseline(&ctx, &tables).await? {
                    out!("{:<20} baseline  {:.2}s", r.table, r.seconds);
                }
                out!("baseline: {:.2}s", started.elapsed().as_secs_f64());
                return Ok(());
            }
            let reports = replicate::run(&ctx, &tables).await?;
            for r in &reports {
                out!(
                    "{:<20} {:>9} rows  verified  {:.2}s",
                    r.table,
                    r.rows,
                    r.seconds
                );
            }
            out!(
                "replicated {} table(s) in {:.2}s",
                reports.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Summary => {
            let pg = pg_pool(&cli.postgres).await?;
            let my = mysql_pool(&cli.mysql).await?;
            out!("{}", jobs::summary::collect(&pg, &my).await?);
            Ok(())
        }
        Command::Stream {
            available_now,
            trigger_interval_ms,
            max_offsets_per_trigger,
            min_partitions,
            ref checkpoint_location,
            ref sink_id,
            ref starting_offsets,
        } => {
            let opts = stream::StreamOptions {
                bootstrap_servers: cli.kafka.bootstrap_servers.clone(),
                topic: cli.kafka.topic.clone(),
                sink_id: sink_id.clone(),
                available_now,
                trigger_interval: Duration::from_millis(trigger_interval_ms),
                max_offsets_per_trigger,
                min_partitions,
                checkpoint_location: checkpoint_location.clone(),
                starting_offsets: starting_offsets.clone(),
            };
            opts.validate()?;
            let sink = JdbcTarget::postgres(&cli.postgres)?;
            let pg_pool = pg_pool(&cli.postgres).await?;
            run_stream(&cli.spark.remote, &sink, &pg_pool, &opts).await
        }
        Command::Marts {
            ref marts,
            batch_size,
            partitions,
            baseline,
        } => {
            let selected: Vec<_> = if marts.is_empty() {
                marts::MARTS.iter().collect()
            } else {
                marts.iter().filter_map(|m| marts::mart(m)).collect()
            };
            let target = JdbcTarget::mysql(&cli.mysql)?;
            let mysql_pool = mysql_pool(&cli.mysql).await?;
            let spark = if baseline {
                vec![jobs::spark::connect(&cli.spark.remote, "jobs-marts-baseline").await?]
            } else {
                // Runs against the same MySQL share the session and its `src_*` views;
                // a view replaced by a concurrent run reads the same replica.
                let key = format!("jobs-marts|{}", target.url);
                jobs::spark::connect_named(&cli.spark.remote, "jobs-marts", &key, selected.len())
                    .await?
            };
            let started = Instant::now();
            let ctx = marts::Job {
                spark: &spark,
                mysql_pool: &mysql_pool,
                mysql: &target,
                batch_size: batch_size.max(1),
                fetch_size: 10_000,
                // The baseline reads each replica in one partition.
                partitions: if baseline { 1 } else { partitions.max(1) },
            };
            if baseline {
                for r in marts::run_baseline(&ctx, &selected).await? {
                    out!("{:<20} baseline  {:.2}s", r.mart, r.seconds);
                }
                out!("baseline: {:.2}s", started.elapsed().as_secs_f64());
                return Ok(());
            }
            let reports = marts::run(&ctx, &selected).await?;
            for r in &reports {
                out!("{:<20} {:>9} rows  {:.2}s", r.mart, r.rows, r.seconds);
            }
            out!(
                "built {} mart(s) in {:.2}s",
                reports.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// Runs the stream. Available-now: one pass, any failure is the exit status (Airflow
/// retries). Continuous: a lost Spark Connect server or failed query is restarted
/// from the checkpoint with backoff, until SIGTERM or Ctrl-C.
async fn run_stream(
    remote: &str,
    sink: &JdbcTarget,
    pg_pool: &PgPool,
    opts: &stream::StreamOptions,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut term = match tokio::signal::unix::signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let started = Instant::now();
    let mut backoff = Duration::from_secs(2);
    loop {
        let attempt = async {
            let spark = stream::connect(remote, opts).await?;
            let query = stream::start(&spark, sink, opts).await?;
            stream::follow(&query, pg_pool, opts, || stop.load(Ordering::SeqCst)).await
        }
        .await;
        match attempt {
            Ok(t) => {
                out!(
                    "streamed {} batch(es): {} users written, {} events quarantined in {:.1}s",
                    t.batches,
                    t.valid,
                    t.quarantined,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            Err(e) if opts.available_now || stop.load(Ordering::SeqCst) => return Err(e),
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

async fn pg_pool(pg: &PostgresSettings) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(pg.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", pg.describe()))
}

async fn mysql_pool(my: &MysqlSettings) -> Result<MySqlPool> {
    MySqlPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(my.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", my.describe()))
}
