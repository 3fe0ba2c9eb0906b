//! `jobs stream` against the local stack: Kafka → Spark Structured Streaming →
//! PostgreSQL, exactly once. Each test has its own topic and sink id (hence its own
//! checkpoint), and e-mails tagged with a unique prefix.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::PgPool;

async fn users_with_tag(pool: &PgPool, tag: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE email LIKE $1 || '.%'")
        .bind(tag)
        .fetch_one(pool)
        .await
        .expect("count users");
    n
}

/// Waits until at least `count` users carry `tag`, failing the test after `secs`.
async fn wait_for_users(pool: &PgPool, tag: &str, count: i64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = users_with_tag(pool, tag).await;
        if seen >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {count} events streamed within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn quarantined(pool: &PgPool, topic: &str) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT kafka_offset, reason FROM users_quarantine WHERE kafka_topic = $1 ORDER BY kafka_offset",
    )
    .bind(topic)
    .fetch_all(pool)
    .await
    .expect("quarantine")
}

/// A running `jobs stream`, killed if the test ends before stopping it (a failed
/// assertion must not leave a continuous stream running).
struct Running(Option<std::process::Child>);

impl Running {
    fn spawn(args: &[&str]) -> Self {
        let child = support::jobs(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stream");
        Self(Some(child))
    }

    fn kill_9(&mut self) {
        let mut child = self.0.take().expect("running");
        child.kill().expect("kill -9"); // SIGKILL: no clean shutdown
        child.wait().expect("reap");
    }

    /// SIGTERM, then the exit status and standard output.
    fn terminate(&mut self) -> std::process::Output {
        let child = self.0.take().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Removes what a test streamed, so runs do not pile up rows in the shared tables.
async fn clean_up(pool: &PgPool, topic: &str, tag: &str) {
    sqlx::query("DELETE FROM users WHERE email LIKE $1 || '.%'")
        .bind(tag)
        .execute(pool)
        .await
        .expect("delete users");
    sqlx::query("DELETE FROM users_quarantine WHERE kafka_topic = $1")
        .bind(topic)
        .execute(pool)
        .await
        .expect("delete quarantine");
    sqlx::query("DELETE FROM stream_sink_progress WHERE sink_id = $1")
        .bind(topic)
        .execute(pool)
        .await
        .expect("delete progress");
    support::delete_topic(topic).await;
}

/// Removes what earlier runs of these tests left behind when they failed midway
/// (their e-mails, topics and sink ids all carry the `stream_it_` / tag prefixes).
async fn purge_leftovers(pool: &PgPool) {
    sqlx::query("DELETE FROM users WHERE email ~ '^(mixed|kill|term|restart)_[0-9]+_[0-9]+\\.'")
        .execute(pool)
        .await
        .expect("purge users");
    sqlx::query("DELETE FROM users_quarantine WHERE kafka_topic LIKE 'stream\\_it\\_%'")
        .execute(pool)
        .await
        .expect("purge quarantine");
    sqlx::query("DELETE FROM stream_sink_progress WHERE sink_id LIKE 'stream\\_it\\_%'")
        .execute(pool)
        .await
        .expect("purge progress");
}

fn stream_args<'a>(topic: &'a str, sink_id: &'a str) -> Vec<&'a str> {
    vec!["--kafka-topic", topic, "stream", "--sink-id", sink_id]
}

#[tokio::test(flavor = "multi_thread")]
async fn good_events_become_users_bad_ones_are_quarantined_and_a_rerun_adds_nothing() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_mixed");
    let sink = topic.clone();
    let tag = support::unique("mixed");
    support::create_topic(&topic, 1).await;
    let (good, bad) = (40, 16);
    let mut events: Vec<String> = (0..good).map(|i| support::good_event(&tag, i)).collect();
    events.extend((0..bad).map(|i| support::bad_event(&tag, i)));
    support::produce(&topic, &events).await;

    let mut args = stream_args(&topic, &sink);
    args.push("--available-now");
    let out = support::run_ok(&args);
    assert!(
        out.contains(&format!("{good} users written, {bad} events quarantined")),
        "{out}"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, good as i64);
    let q = quarantined(&pg, &topic).await;
    assert_eq!(q.len(), bad);
    let reasons: Vec<&str> = q.iter().map(|(_, r)| r.as_str()).collect();
    for expected in [
        "malformed JSON",
        "missing field email",
        "malformed e-mail",
        "unknown loyalty status",
        "first_name longer than 50 characters",
        "phone must be a string, not bigint",
        "registration_date is not an ISO 8601 timestamp",
        "registration_date lies in the future",
    ] {
        assert!(
            reasons.contains(&expected),
            "no {expected:?} in {reasons:?}"
        );
    }
    // The quarantine keeps the raw payload with its Kafka coordinates.
    let (raw,): (String,) = sqlx::query_as(
        "SELECT raw_payload FROM users_quarantine WHERE kafka_topic = $1 AND kafka_offset = $2",
    )
    .bind(&topic)
    .bind(good as i64)
    .fetch_one(&pg)
    .await
    .expect("raw");
    assert_eq!(raw, events[good]);

    // Nothing new in the topic: a second run adds nothing.
    let out = support::run_ok(&args);
    assert!(
        out.contains("0 users written, 0 events quarantined"),
        "{out}"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, good as i64);
    assert_eq!(quarantined(&pg, &topic).await.len(), bad);
    clean_up(&pg, &topic, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_a_backlog_loses_and_duplicates_nothing() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_kill");
    let sink = topic.clone();
    let tag = support::unique("kill");
    support::create_topic(&topic, 1).await;
    let total = 60_000;
    let events: Vec<String> = (0..total)
        .map(|i| {
            if i % 100 == 7 {
                support::bad_event(&tag, i)
            } else {
                support::good_event(&tag, i)
            }
        })
        .collect();
    let bad = events.iter().filter(|e| !e.contains("\"Test\"")).count();
    support::produce(&topic, &events).await;

    // Small batches so that the kill lands between and inside them.
    let mut args = stream_args(&topic, &sink);
    args.extend(["--max-offsets-per-trigger", "5000"]);
    let mut stream = Running::spawn(&args);
    wait_for_users(&pg, &tag, 1, 120).await;
    stream.kill_9();
    let partial = users_with_tag(&pg, &tag).await;

    // The restarted job stops the query its predecessor left on the server and
    // resumes from the checkpoint.
    args.push("--available-now");
    support::run_ok(&args);
    let written = users_with_tag(&pg, &tag).await;
    assert!(
        partial < (total - bad) as i64,
        "the kill came after the backlog was done"
    );
    assert_eq!(written, (total - bad) as i64, "users lost or duplicated");
    assert_eq!(
        quarantined(&pg, &topic).await.len(),
        bad,
        "quarantine lost or duplicated"
    );
    clean_up(&pg, &topic, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn continuous_mode_stops_cleanly_on_sigterm() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_term");
    let sink = topic.clone();
    let tag = support::unique("term");
    support::create_topic(&topic, 1).await;
    let mut stream = Running::spawn(&stream_args(&topic, &sink));
    let events: Vec<String> = (0..25).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &events).await;
    wait_for_users(&pg, &tag, 25, 120).await;
    let out = stream.terminate();
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("25 users written"));
    clean_up(&pg, &topic, &tag).await;
}

/// Restarts the local stack's Spark Connect server (stop it, then `stack.sh up`).
fn restart_spark_connect() {
    let root = support::workspace_root();
    let pid = std::fs::read_to_string(root.join(".local/run/spark-connect.pid"))
        .expect("the local stack's Spark Connect pid file");
    let status = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Wait until it is gone, or `stack.sh up` would find it still running.
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while proc_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "Spark Connect did not stop in 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = std::process::Command::new(root.join("infra/local/stack.sh"))
        .arg("up")
        .current_dir(&root)
        .output()
        .expect("stack.sh up");
    assert!(
        out.status.success(),
        "restarting Spark Connect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spark_connect_restart_mid_stream_loses_and_duplicates_nothing() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_restart");
    let sink = topic.clone();
    let tag = support::unique("restart");
    support::create_topic(&topic, 1).await;
    let total = 40_000;
    let events: Vec<String> = (0..total).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &events).await;

    // Continuous mode: the job itself reconnects and resumes from the checkpoint.
    let mut args = stream_args(&topic, &sink);
    args.extend(["--max-offsets-per-trigger", "4000"]);
    let mut stream = Running::spawn(&args);
    wait_for_users(&pg, &tag, 1, 120).await;
    restart_spark_connect();
    wait_for_users(&pg, &tag, total as i64, 240).await;
    let out = stream.terminate();
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert_eq!(users_with_tag(&pg, &tag).await, total as i64);
    assert!(
        quarantined(&pg, &topic).await.is_empty(),
        "a replay was quarantined as a duplicate"
    );
    clean_up(&pg, &topic, &tag).await;
}
