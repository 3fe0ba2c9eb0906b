//! Helpers for the integration tests: they run against the local stack (`make up`).

#![allow(dead_code)]

pub mod faults;
pub mod rows;
pub mod workload;

use std::process::{Command, Output};
use std::time::Duration;

use common::{KafkaSettings, MysqlSettings, PostgresSettings};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::{MySqlPool, PgPool};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use testkit::{create_topic, delete_topic, unique, var, workspace_root};

/// The binary under test, run from the workspace root so it reads the real `.env`.
pub fn jobs(args: &[&str]) -> Command {
    testkit::binary(env!("CARGO_BIN_EXE_jobs"), args)
}

/// Runs `jobs`, returning its output with stdout and stderr as text.
pub fn run(args: &[&str]) -> (Output, String, String) {
    let out = jobs(args).output().expect("run jobs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

pub fn run_ok(args: &[&str]) -> String {
    let (out, stdout, stderr) = run(args);
    assert!(
        out.status.success(),
        "jobs {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

pub fn postgres() -> PostgresSettings {
    common::load_dotenv();
    PostgresSettings {
        host: var("POSTGRES_HOST"),
        port: var("POSTGRES_PORT").parse().expect("POSTGRES_PORT"),
        database: var("POSTGRES_DB"),
        schema: var("POSTGRES_SCHEMA"),
        user: var("POSTGRES_USER"),
    }
}

/// Where the batch reads go, as `.env` says (POSTGRES_READ_FROM, POSTGRES_STANDBY_*).
pub fn postgres_reads() -> jobs::postgres::ReadSettings {
    use clap::ValueEnum;
    common::load_dotenv();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    jobs::postgres::ReadSettings {
        read_from: env("POSTGRES_READ_FROM")
            .map(|v| jobs::postgres::ReadFrom::from_str(&v, true).expect("POSTGRES_READ_FROM"))
            .unwrap_or(jobs::postgres::ReadFrom::Primary),
        standby_host: env("POSTGRES_STANDBY_HOST"),
        standby_port: env("POSTGRES_STANDBY_PORT").map_or(5433, |p| p.parse().expect("port")),
        max_lag_secs: env("POSTGRES_STANDBY_MAX_LAG_SECS").map_or(30, |s| s.parse().expect("secs")),
    }
}

pub fn mysql() -> MysqlSettings {
    common::load_dotenv();
    MysqlSettings {
        host: var("MYSQL_HOST"),
        port: var("MYSQL_PORT").parse().expect("MYSQL_PORT"),
        database: var("MYSQL_DB"),
        user: var("MYSQL_USER"),
    }
}

pub fn kafka() -> KafkaSettings {
    common::load_dotenv();
    KafkaSettings {
        bootstrap_servers: var("KAFKA_BOOTSTRAP_SERVERS"),
        topic: var("KAFKA_TOPIC"),
    }
}

pub async fn pg_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(postgres().connect_options().expect("settings"))
        .await
        .expect("connect to the local stack's PostgreSQL")
}

pub async fn mysql_pool() -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(4)
        .connect_with(mysql().connect_options().expect("settings"))
        .await
        .expect("connect to the local stack's MySQL")
}

/// Produces the payloads in order, waiting for every delivery.
pub async fn produce(topic: &str, payloads: &[String]) {
    let bytes: Vec<Vec<u8>> = payloads.iter().map(|p| p.as_bytes().to_vec()).collect();
    produce_bytes(topic, &bytes).await;
}

/// Produces raw payloads (any bytes) in order, waiting for every delivery.
pub async fn produce_bytes(topic: &str, payloads: &[Vec<u8>]) {
    let producer: FutureProducer = kafka()
        .client_config(Duration::from_secs(30))
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = payloads.iter().map(|p| {
        producer.send(
            FutureRecord::<(), [u8]>::to(topic).payload(p.as_slice()),
            Duration::from_secs(30),
        )
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|(e, _)| e).expect("delivered");
    }
}

/// A valid registration event with a unique e-mail under `tag`.
pub fn good_event(tag: &str, i: usize) -> String {
    let loyalty = ["Gold", "Silver", "Bronze"][i % 3];
    serde_json::json!({
        "first_name": "Test",
        "last_name": format!("User{i}"),
        "email": format!("{tag}.{i}@example.com"),
        "phone": "+1-555-0100",
        "registration_date": "2025-03-01T12:00:00Z",
        "loyalty_status": loyalty,
    })
    .to_string()
}

/// One malformed event of each kind the stream must quarantine, cycling by `i`.
pub fn bad_event(tag: &str, i: usize) -> String {
    let mut doc = serde_json::json!({
        "first_name": "Bad",
        "last_name": format!("Event{i}"),
        "email": format!("{tag}.bad{i}@example.com"),
        "phone": "+1-555-0199",
        "registration_date": "2025-03-01T12:00:00Z",
        "loyalty_status": "Gold",
    });
    match i % 8 {
        0 => return format!("{{\"first_name\": \"broken {i}\""),
        1 => {
            doc.as_object_mut().expect("object").remove("email");
        }
        2 => doc["email"] = "not-an-email".into(),
        3 => doc["loyalty_status"] = "Platinum".into(),
        4 => doc["first_name"] = "x".repeat(51).into(),
        5 => doc["phone"] = serde_json::json!(5550100),
        6 => doc["registration_date"] = "yesterday".into(),
        _ => doc["registration_date"] = "2999-01-01T00:00:00Z".into(),
    }
    doc.to_string()
}

/// A JSON document of the Spark application UI's REST API (`path` after `/api/v1/`).
pub fn spark_api(path: &str) -> serde_json::Value {
    let url = format!("http://localhost:{}/api/v1/{path}", var("SPARK_UI_PORT"));
    let body = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// The Spark jobs of the Connect application whose tags carry the run tag `tag` (the
/// `tag=` of a job's log line), as (submission, completion) times.
pub fn spark_jobs_of_run(tag: &str) -> Vec<(String, String)> {
    let apps = spark_api("applications");
    let app = apps[0]["id"].as_str().expect("application id");
    let jobs = spark_api(&format!("applications/{app}/jobs"));
    let needle = format!("_Tag_{tag}");
    jobs.as_array()
        .expect("jobs")
        .iter()
        .filter(|j| {
            j["jobTags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t.as_str().is_some_and(|t| t.ends_with(&needle)))
            })
        })
        .map(|j| {
            let time = |k: &str| j[k].as_str().unwrap_or_default().to_string();
            (time("submissionTime"), time("completionTime"))
        })
        .collect()
}

/// The tag a `jobs` run logged (`tag=<run>-<random>`).
pub fn run_tag(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tag="))
        .unwrap_or_else(|| panic!("no tag= in the job's log:\n{stderr}"))
        .to_string()
}

/// How many of these (start, end) intervals overlap at most at one instant. The times
/// are Spark's `2026-11-23T15:31:41.761GMT`, which sort as text.
pub fn max_overlap(intervals: &[(String, String)]) -> usize {
    let mut edges: Vec<(&str, i32)> = intervals
        .iter()
        .flat_map(|(s, e)| [(s.as_str(), 1), (e.as_str(), -1)])
        .collect();
    // At equal times an end comes first: touching intervals do not overlap.
    edges.sort();
    edges
        .iter()
        .scan(0i32, |open, (_, d)| {
            *open += d;
            Some(*open)
        })
        .max()
        .unwrap_or(0)
        .max(0) as usize
}
