//! Helpers for the integration tests: they run against the local stack (`make up`).
#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clap::Parser;
use datagen::cli::{Cli, Command as Sub};
use datagen::kafka::KIND_HEADER;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

#[allow(unused_imports)]
pub use testkit::workspace_root;

/// The binary under test, run from the workspace root so it reads the real `.env`.
pub fn datagen(args: &[&str]) -> Command {
    testkit::binary(env!("CARGO_BIN_EXE_datagen"), args)
}

pub fn run(args: &[&str]) -> (Output, String) {
    let out = datagen(args).output().expect("run datagen");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// Connects like `datagen pg --pg-schema <schema>` would.
pub async fn connect(schema: &str) -> PgConnection {
    common::load_dotenv();
    let cli = Cli::try_parse_from(["datagen", "pg", "--pg-schema", schema]).expect("args");
    let Sub::Pg(args) = cli.command else {
        unreachable!()
    };
    PgConnection::connect_with(&args.postgres.connect_options().expect("settings"))
        .await
        .expect("connect to PostgreSQL of the local stack")
}

/// A scratch schema holding the platform's tables (from infra/db/postgres/schema.sql),
/// dropped when the guard goes away.
pub struct Scratch {
    pub schema: String,
}

impl Scratch {
    pub async fn new(name: &str) -> Self {
        common::load_dotenv();
        let schema = format!("datagen_test_{name}_{}", std::process::id());
        let mut conn = connect(&schema).await;
        drop_schema(&mut conn, &schema).await;
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let status = Command::new("psql")
            .args(["-q", "-X", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", &var("POSTGRES_HOST"), "-p", &var("POSTGRES_PORT")])
            .args(["-U", &var("POSTGRES_USER"), "-d", &var("POSTGRES_DB")])
            .args(["-v", &format!("schema={schema}")])
            .args(["-v", &format!("user={}", var("POSTGRES_USER"))])
            .arg("-f")
            .arg(workspace_root().join("infra/db/postgres/schema.sql"))
            .env("PGPASSWORD", var("POSTGRES_PASSWORD"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run psql");
        assert!(status.success(), "creating scratch schema {schema} failed");
        Self { schema }
    }

    pub async fn conn(&self) -> PgConnection {
        connect(&self.schema).await
    }

    pub async fn drop(self) {
        let mut conn = connect(&self.schema).await;
        drop_schema(&mut conn, &self.schema).await;
    }
}

async fn drop_schema(conn: &mut PgConnection, schema: &str) {
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(conn)
    .await
    .expect("drop scratch schema");
}

pub async fn counts(conn: &mut PgConnection) -> [i64; 5] {
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM product_categories), \
                (SELECT count(*) FROM products), (SELECT count(*) FROM orders), \
                (SELECT count(*) FROM order_details)",
    )
    .fetch_one(conn)
    .await
    .expect("count rows");
    [row.0, row.1, row.2, row.3, row.4]
}

/// A checksum of the content of all five tables, in id order.
pub async fn checksum(conn: &mut PgConnection) -> String {
    sqlx::query_scalar(
        "SELECT md5(concat_ws('|', \
            (SELECT string_agg(t::text, ',' ORDER BY user_id) FROM users t), \
            (SELECT string_agg(t::text, ',' ORDER BY category_id) FROM product_categories t), \
            (SELECT string_agg(t::text, ',' ORDER BY product_id) FROM products t), \
            (SELECT string_agg(t::text, ',' ORDER BY order_id) FROM orders t), \
            (SELECT string_agg(t::text, ',' ORDER BY order_detail_id) FROM order_details t)))",
    )
    .fetch_one(conn)
    .await
    .expect("checksum")
}

/// The error lines a failed run printed (logs go to stderr).
pub fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("ERROR")).collect()
}

pub fn bootstrap() -> String {
    common::load_dotenv();
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "localhost:9092".into())
}

/// Everything in the topic: (kind header, payload). Reads until `expected` messages
/// arrived and then 2 more quiet seconds, to catch extras.
pub fn read_all(topic: &str, expected: usize) -> Vec<(String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("{topic}_reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let kind = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == KIND_HEADER))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                out.push((kind, m.payload().unwrap_or_default().to_vec()));
                quiet_since = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {
                if out.len() >= expected && quiet_since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
        }
    }
    out
}

pub mod server;
