//! Benchmark: end-to-end latency of `jobs stream` (event produced → its row visible in
//! PostgreSQL) at a steady event rate in continuous mode, with loss and duplicate
//! counts. Runs against the local stack in a scratch topic; removes what it wrote.
//!
//!   cargo run --release --example stream_latency -- [RATE] [SECONDS] [TRIGGER_MS]
//!
//! Defaults: 1000 events/s for 60 s with a 1000 ms trigger.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{KafkaSettings, PostgresSettings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgPoolOptions;

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<()> {
    common::load_dotenv();
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("numeric arguments"))
        .collect::<Result<_>>()?;
    let rate = *args.first().unwrap_or(&1000);
    let seconds = *args.get(1).unwrap_or(&60);
    let trigger_ms = *args.get(2).unwrap_or(&1000);
    let total = rate * seconds;

    let pg = PostgresSettings {
        host: env("POSTGRES_HOST")?,
        port: env("POSTGRES_PORT")?.parse()?,
        database: env("POSTGRES_DB")?,
        schema: env("POSTGRES_SCHEMA")?,
        user: env("POSTGRES_USER")?,
    };
    let kafka = KafkaSettings {
        bootstrap_servers: env("KAFKA_BOOTSTRAP_SERVERS")?,
        topic: format!("stream_latency_{}", std::process::id()),
    };
    let topic = kafka.topic.clone();
    let tag = topic.clone();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(pg.connect_options()?)
        .await?;
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config(Duration::from_secs(10)).create()?;
    admin
        .create_topics(
            [&NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;

    let jobs = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("jobs"))
        .context("target dir")?;
    let mut stream = Command::new(&jobs)
        .args(["--kafka-topic", &topic, "stream", "--sink-id", &topic])
        .args(["--trigger-interval-ms", &trigger_ms.to_string()])
        .args(["--starting-offsets", "earliest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", jobs.display()))?;
    // Let the query start and run its first (empty) batch.
    tokio::time::sleep(Duration::from_secs(8)).await;

    let producer: FutureProducer = kafka
        .client_config(Duration::from_secs(30))
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()?;
    let (max_before,): (Option<i32>,) = sqlx::query_as("SELECT max(user_id) FROM users")
        .fetch_one(&pool)
        .await?;
    let mut last_id = max_before.unwrap_or(0);

    let started = Instant::now();
    let mut sent_at: Vec<Option<Instant>> = vec![None; total as usize];
    let mut seen_at: HashMap<u64, Instant> = HashMap::new();
    let mut next = 0u64;
    let mut deliveries = Vec::new();
    let deadline_all = started + Duration::from_secs(seconds + 60);
    while (seen_at.len() as u64) < total && Instant::now() < deadline_all {
        // Produce what the schedule says is due by now.
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while next < due {
            let payload = serde_json::json!({
                "first_name": "Lat", "last_name": "Ency",
                "email": format!("{tag}.{next}@example.com"), "phone": "+1-555-0100",
                "registration_date": "2025-01-01T00:00:00Z", "loyalty_status": "Gold",
            })
            .to_string();
            sent_at[next as usize] = Some(Instant::now());
            let p = producer.clone();
            let t = topic.clone();
            deliveries.push(tokio::spawn(async move {
                p.send(
                    FutureRecord::<(), _>::to(&t).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .is_ok()
            }));
            next += 1;
        }
        // Which rows became visible since the last look.
        let rows: Vec<(i32, String)> = sqlx::query_as(
            "SELECT user_id, email FROM users WHERE user_id > $1 AND email LIKE $2 || '.%' ORDER BY user_id",
        )
        .bind(last_id)
        .bind(&tag)
        .fetch_all(&pool)
        .await?;
        let now = Instant::now();
        for (id, email) in rows {
            last_id = last_id.max(id);
            let seq: u64 = email
                .trim_start_matches(&format!("{tag}."))
                .trim_end_matches("@example.com")
                .parse()?;
            seen_at.entry(seq).or_insert(now);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delivered = 0u64;
    for d in deliveries {
        if d.await.unwrap_or(false) {
            delivered += 1;
        }
    }
    // SIGTERM: the job stops its query and exits 0.
    Command::new("kill")
        .args(["-TERM", &stream.id().to_string()])
        .status()?;
    let status = stream.wait()?;

    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE email LIKE $1 || '.%'")
        .bind(&tag)
        .fetch_one(&pool)
        .await?;
    let (dups,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM users_quarantine WHERE kafka_topic = $1 AND reason = 'duplicate email'",
    )
    .bind(&topic)
    .fetch_one(&pool)
    .await?;
    let mut lat: Vec<f64> = seen_at
        .iter()
        .filter_map(|(seq, seen)| {
            sent_at[*seq as usize].map(|s| seen.duration_since(s).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    // Clean up before reporting.
    sqlx::query("DELETE FROM users WHERE email LIKE $1 || '.%'")
        .bind(&tag)
        .execute(&pool)
        .await?;
    sqlx::query("DELETE FROM users_quarantine WHERE kafka_topic = $1")
        .bind(&topic)
        .execute(&pool)
        .await?;
    for table in ["stream_sink_offsets", "stream_sink_commits"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE sink_id = $1"
        )))
        .bind(&topic)
        .execute(&pool)
        .await?;
    }
    let _ = admin.delete_topics(&[&topic], &AdminOptions::new()).await;

    println!(
        "rate {rate}/s for {seconds}s, trigger {trigger_ms} ms: produced {total}, delivered {delivered}, \
         rows {rows}, lost {}, duplicates {dups}; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         job exit {status}",
        total as i64 - rows,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    if rows != total as i64 || dups != 0 {
        bail!("events lost or duplicated");
    }
    Ok(())
}
