//! `jobs check`: proves that every service is usable, not merely listening: a query
//! on each database as the platform user, a Kafka produce/consume round trip and a
//! Spark Connect query. `make up` waits on it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{KafkaSettings, MysqlSettings, PostgresSettings, SparkSettings};

use crate::Settings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::Connection;

/// Topic for the round trip, so that probes never reach the events topic.
pub const HEALTH_TOPIC: &str = "_platform_health";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Postgres,
    PostgresStandby,
    Mysql,
    Kafka,
    SparkConnect,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::PostgresStandby => "postgres-standby",
            Service::Mysql => "mysql",
            Service::Kafka => "kafka",
            Service::SparkConnect => "spark-connect",
        }
    }
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Postgres,
        Service::PostgresStandby,
        Service::Mysql,
        Service::Kafka,
        Service::SparkConnect,
    ];
}

/// Check that every service is usable: a query on PostgreSQL and MySQL as the
/// platform user, a Kafka produce/consume round trip, a Spark Connect query.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep retrying for up to this many seconds before giving up
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Only these services (default: all)
    #[arg(long = "service", value_enum)]
    services: Vec<Service>,
}

pub async fn run(settings: &Settings, args: Args) -> Result<()> {
    let services = if args.services.is_empty() {
        &Service::ALL[..]
    } else {
        &args.services[..]
    };
    check_all(settings, services, Duration::from_secs(args.wait))
        .await
        .map_err(|(service, e)| e.context(format!("service={} is not usable", service.name())))
}

/// Probes each service, retrying until `wait` has passed. Returns the first service
/// that never became usable, with its last error.
pub async fn check_all(
    settings: &Settings,
    services: &[Service],
    wait: Duration,
) -> Result<(), (Service, anyhow::Error)> {
    let deadline = Instant::now() + wait;
    for &service in services {
        let started = Instant::now();
        loop {
            match probe(settings, service).await {
                Ok(what) => {
                    tracing::info!(
                        "service={} ok: {what} ({} ms)",
                        service.name(),
                        started.elapsed().as_millis()
                    );
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("service={} not ready yet: {e:#}", service.name());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err((service, e)),
            }
        }
    }
    Ok(())
}

pub async fn probe(settings: &Settings, service: Service) -> Result<String> {
    // Each probe gets its own time limit so one hung connection cannot eat the wait.
    let limit = Duration::from_secs(20);
    let fut = async {
        match service {
            Service::Postgres => probe_postgres(&settings.postgres).await,
            Service::PostgresStandby => probe_standby(settings).await,
            Service::Mysql => probe_mysql(&settings.mysql).await,
            Service::Kafka => probe_kafka(&settings.kafka).await,
            Service::SparkConnect => probe_spark(&settings.spark).await,
        }
    };
    tokio::time::timeout(limit, fut)
        .await
        .with_context(|| format!("no answer within {}s", limit.as_secs()))?
}

async fn probe_postgres(pg: &PostgresSettings) -> Result<String> {
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", pg.describe()))?;
    let (one, schema): (i32, String) = sqlx::query_as("SELECT 1, current_schema()::text")
        .fetch_one(&mut conn)
        .await
        .context("query failed")?;
    ensure!(one == 1, "SELECT 1 returned {one}");
    ensure!(
        schema == pg.schema,
        "schema {} is missing (current schema is {schema})",
        pg.schema
    );
    conn.close().await.ok();
    Ok(format!("query on {} (schema {schema})", pg.describe()))
}

/// The hot standby the batch reads use: in recovery, of this primary, caught up
/// within the bound. Not probed when the reads go to the primary.
async fn probe_standby(settings: &Settings) -> Result<String> {
    let reads = &settings.postgres_reads;
    match reads.ready(&settings.postgres).await? {
        None => Ok("not used (POSTGRES_READ_FROM=primary)".into()),
        Some(c) => Ok(format!(
            "{} replays the primary (at {} within {} ms)",
            reads.target(&settings.postgres).describe(),
            c.target,
            c.waited.as_millis()
        )),
    }
}

async fn probe_mysql(my: &MysqlSettings) -> Result<String> {
    let mut conn = sqlx::MySqlConnection::connect_with(&my.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", my.describe()))?;
    let (one, version): (i64, String) = sqlx::query_as("SELECT 1, VERSION()")
        .fetch_one(&mut conn)
        .await
        .context("query failed")?;
    ensure!(one == 1, "SELECT 1 returned {one}");
    conn.close().await.ok();
    Ok(format!("query on {} (server {version})", my.describe()))
}

async fn probe_kafka(kafka: &KafkaSettings) -> Result<String> {
    let timeout = Duration::from_secs(10);
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config(timeout)
        .create()
        .context("cannot create Kafka admin client")?;
    let topic = NewTopic::new(HEALTH_TOPIC, 1, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(timeout)),
        )
        .await
        .with_context(|| format!("cannot reach Kafka at {}", kafka.bootstrap_servers))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("cannot create topic {t}: {code}"),
        }
    }

    let producer: FutureProducer = kafka
        .client_config(timeout)
        .set("enable.idempotence", "true")
        .create()
        .context("cannot create Kafka producer")?;
    let payload = format!("probe-{}", std::process::id());
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to(HEALTH_TOPIC).payload(&payload),
            timeout,
        )
        .await
        .map_err(|(e, _)| e)
        .context("produce failed")?;

    let consumer: BaseConsumer = kafka
        .client_config(timeout)
        .set("group.id", "_platform_health")
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create Kafka consumer")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(
        HEALTH_TOPIC,
        delivery.partition,
        Offset::Offset(delivery.offset),
    )?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // BaseConsumer::poll blocks; keep it off the async worker threads.
        let got = tokio::task::block_in_place(|| {
            consumer
                .poll(Duration::from_millis(200))
                .map(|m| m.map(|m| m.payload().map(<[u8]>::to_vec)))
        });
        match got {
            Some(Ok(Some(p))) if p == payload.as_bytes() => {
                return Ok(format!(
                    "produce/consume round trip on {} via {}",
                    HEALTH_TOPIC, kafka.bootstrap_servers
                ));
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            _ => {}
        }
    }
    bail!("the produced message did not come back within {timeout:?}")
}

async fn probe_spark(spark: &SparkSettings) -> Result<String> {
    // A named session, so that repeated checks (every `make up`) do not leave a new
    // idle session on the server each time.
    let session = crate::spark::connect_named(spark, "platform-check", "platform-check").await?;
    let s = session.clone();
    let rows = crate::spark::blocking(move || s.sql("SELECT 1 AS ok")?.collect())
        .await
        .context("Spark SQL failed")?;
    ensure!(
        rows.len() == 1 && rows[0].get(0) == Some(&crate::spark::Value::Integer(1)),
        "SELECT 1 returned something else"
    );
    let version = crate::spark::blocking(move || session.version())
        .await
        .unwrap_or_default();
    Ok(format!(
        "SELECT 1 through Spark Connect at {} (Spark {version})",
        spark.endpoint()
    ))
}
