//! `jobs stream` against the local stack: Kafka → Spark Structured Streaming →
//! PostgreSQL, exactly once. Each test has its own topic and sink id (hence its own
//! checkpoint), and e-mails tagged with a unique prefix.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool};

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
    for table in ["stream_sink_offsets", "stream_sink_commits"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE sink_id = $1"
        )))
        .bind(topic)
        .execute(pool)
        .await
        .expect("delete the sink's bookkeeping");
    }
    let _ = std::fs::remove_dir_all(checkpoint_dir(topic));
    support::delete_topic(topic).await;
}

/// The default checkpoint of a sink id on the local stack.
fn checkpoint_dir(sink_id: &str) -> PathBuf {
    support::workspace_root()
        .join(".local/spark/checkpoints")
        .join(sink_id)
}

/// Removes what earlier runs of these tests left behind when they failed midway
/// (their e-mails, topics and sink ids all carry the `stream_it_` / tag prefixes).
async fn purge_leftovers(pool: &PgPool) {
    sqlx::query("DELETE FROM users WHERE email ~ '^(mixed|kill|term|restart|lost|replay|ahead|hostile|exec|twice)_[0-9]+_[0-9]+\\.'")
        .execute(pool)
        .await
        .expect("purge users");
    sqlx::query("DELETE FROM users_quarantine WHERE kafka_topic LIKE 'stream\\_it\\_%'")
        .execute(pool)
        .await
        .expect("purge quarantine");
    for table in ["stream_sink_offsets", "stream_sink_commits"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE sink_id LIKE 'stream\\_it\\_%'"
        )))
        .execute(pool)
        .await
        .expect("purge the sinks' bookkeeping");
    }
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

/// Kills the local stack's Spark Connect server with SIGKILL (no clean shutdown,
/// as a crash or an OOM kill), then starts it again (`stack.sh up`).
fn kill_9_spark_connect_and_restart() {
    let root = support::workspace_root();
    let pid = std::fs::read_to_string(root.join(".local/run/spark-connect.pid"))
        .expect("the local stack's Spark Connect pid file");
    let status = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success());
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while proc_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "Spark Connect did not die in 60 s"
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
async fn kill_9_of_the_spark_connect_server_mid_stream_loses_and_duplicates_nothing() {
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
    kill_9_spark_connect_and_restart();
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

/// The stream's totals line of a finished `jobs stream` run.
fn totals(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("streamed "))
        .unwrap_or_else(|| panic!("no totals line in {out:?}"))
}

async fn offsets_of(pool: &PgPool, sink: &str) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "SELECT kafka_partition, next_offset FROM stream_sink_offsets WHERE sink_id = $1 ORDER BY 1",
    )
    .bind(sink)
    .fetch_all(pool)
    .await
    .expect("offsets")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_checkpoint_resumes_from_postgres_and_writes_each_new_event_once() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_lost");
    let tag = support::unique("lost");
    support::create_topic(&topic, 2).await;
    let first: Vec<String> = (0..100).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &first).await;
    let mut args = stream_args(&topic, &topic);
    args.push("--available-now");
    support::run_ok(&args);
    assert_eq!(users_with_tag(&pg, &tag).await, 100);

    // The checkpoint is lost (volume deleted, restore, moved location); 100 new events.
    std::fs::remove_dir_all(checkpoint_dir(&topic)).expect("delete the checkpoint");
    let second: Vec<String> = (100..200).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &second).await;
    let out = support::run_ok(&args);
    assert!(
        totals(&out).contains("100 users written, 0 events quarantined"),
        "{out}"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, 200);
    assert!(quarantined(&pg, &topic).await.is_empty());

    // Lost again, and this time the stream re-reads the whole topic from the start
    // (a new checkpoint location and no knowledge of PostgreSQL's offsets would do
    // that): the sink skips every event it already holds.
    std::fs::remove_dir_all(checkpoint_dir(&topic)).expect("delete the checkpoint");
    let held = offsets_of(&pg, &topic).await;
    sqlx::query("DELETE FROM stream_sink_offsets WHERE sink_id = $1")
        .bind(&topic)
        .execute(&pg)
        .await
        .expect("forget the offsets");
    let out = support::run_ok(&args);
    // Without offsets the replay meets the rows themselves: nothing is inserted twice,
    // and each re-read event is recognised as the same event re-sent.
    assert_eq!(users_with_tag(&pg, &tag).await, 200, "{out}");
    assert_eq!(offsets_of(&pg, &topic).await, held);
    let q = quarantined(&pg, &topic).await;
    assert_eq!(q.len(), 200);
    assert!(q.iter().all(|(_, r)| r == "duplicate event"), "{q:?}");
    clean_up(&pg, &topic, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_batch_with_another_partitioning_writes_nothing() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_replay");
    let tag = support::unique("replay");
    support::create_topic(&topic, 1).await;
    let events: Vec<String> = (0..3000).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &events).await;
    let mut args = stream_args(&topic, &topic);
    args.extend(["--available-now", "--min-partitions", "2"]);
    support::run_ok(&args);
    assert_eq!(users_with_tag(&pg, &tag).await, 3000);

    // Forget that Spark committed the last batch (as a crash after the sink's commit
    // and before Spark's would): the next run replays it, split over 5 tasks now.
    let commits = checkpoint_dir(&topic).join("commits");
    let last = std::fs::read_dir(&commits)
        .expect("commits")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("a committed batch");
    std::fs::remove_file(commits.join(last.to_string())).expect("remove commit");
    let _ = std::fs::remove_file(commits.join(format!(".{last}.crc")));
    let mut args = stream_args(&topic, &topic);
    args.extend(["--available-now", "--min-partitions", "5"]);
    let out = support::run_ok(&args);
    assert!(
        totals(&out).contains("0 users written, 0 events quarantined, 3000 skipped"),
        "{out}"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, 3000);
    assert!(
        quarantined(&pg, &topic).await.is_empty(),
        "a replay was quarantined"
    );
    clean_up(&pg, &topic, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_ahead_of_postgres_is_refused_with_one_line() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_ahead");
    let tag = support::unique("ahead");
    support::create_topic(&topic, 1).await;
    let events: Vec<String> = (0..50).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &events).await;
    let mut args = stream_args(&topic, &topic);
    args.push("--available-now");
    support::run_ok(&args);

    // PostgreSQL restored to an older state: it lost the last 20 events and their
    // offsets, while the checkpoint says they are done.
    sqlx::query(
        "DELETE FROM users WHERE email LIKE $1 || '.%' AND last_name ~ '^User(3[0-9]|4[0-9])$'",
    )
    .bind(&tag)
    .execute(&pg)
    .await
    .expect("lose rows");
    sqlx::query("UPDATE stream_sink_offsets SET next_offset = 30 WHERE sink_id = $1")
        .bind(&topic)
        .execute(&pg)
        .await
        .expect("roll back offsets");
    let (out, stdout, stderr) = support::run(&args);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("ahead of PostgreSQL"), "{stderr}");
    assert!(errors[0].contains("20 event(s)"), "{stderr}");

    // Doing what the line says brings the 20 events back, once.
    std::fs::remove_dir_all(checkpoint_dir(&topic)).expect("delete the checkpoint");
    let out = support::run_ok(&args);
    assert!(
        totals(&out).contains("20 users written, 0 events quarantined"),
        "{out}"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, 50);
    clean_up(&pg, &topic, &tag).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_stream_of_the_same_sink_is_refused_while_one_runs() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_twice");
    let tag = support::unique("twice");
    support::create_topic(&topic, 1).await;
    let mut first = Running::spawn(&stream_args(&topic, &topic));
    support::produce(&topic, &[support::good_event(&tag, 0)]).await;
    wait_for_users(&pg, &tag, 1, 120).await;
    let mut args = stream_args(&topic, &topic);
    args.push("--available-now");
    let (out, _, stderr) = support::run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("is already running"), "{stderr}");
    // The first one was left alone.
    support::produce(&topic, &[support::good_event(&tag, 1)]).await;
    wait_for_users(&pg, &tag, 2, 60).await;
    let out = first.terminate();
    assert!(out.status.success());
    clean_up(&pg, &topic, &tag).await;
}

/// Pids of the Spark executor JVMs of the local stack.
fn executor_pids() -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", "CoarseGrainedExecutorBackend"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_an_executor_mid_backlog_loses_and_duplicates_nothing() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_exec");
    let tag = support::unique("exec");
    support::create_topic(&topic, 1).await;
    let total = 60_000;
    let events: Vec<String> = (0..total).map(|i| support::good_event(&tag, i)).collect();
    support::produce(&topic, &events).await;
    let mut args = stream_args(&topic, &topic);
    args.extend(["--max-offsets-per-trigger", "5000"]);
    let mut stream = Running::spawn(&args);
    wait_for_users(&pg, &tag, 1, 120).await;
    let pids = executor_pids();
    assert!(!pids.is_empty(), "no executor JVM found");
    for pid in &pids {
        let status = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    let partial = users_with_tag(&pg, &tag).await;
    wait_for_users(&pg, &tag, total as i64, 300).await;
    let out = stream.terminate();
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert!(
        partial < total as i64,
        "the kill came after the backlog was done"
    );
    assert_eq!(users_with_tag(&pg, &tag).await, total as i64);
    assert!(
        quarantined(&pg, &topic).await.is_empty(),
        "a retried task was quarantined"
    );
    clean_up(&pg, &topic, &tag).await;
}

/// Events from outside the happy path. Each lands exactly once, in `users` or in the
/// quarantine with a reason that tells what it is; none stops the stream.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_events_are_stored_or_quarantined_exactly_and_never_stop_the_stream() {
    let pg = support::pg_pool().await;
    purge_leftovers(&pg).await;
    let topic = support::unique("stream_it_hostile");
    let tag = support::unique("hostile");
    support::create_topic(&topic, 1).await;
    let event = |email: &str, first: &str, date: &str| {
        serde_json::json!({
            "first_name": first, "last_name": "Hostile", "email": email, "phone": "+1",
            "registration_date": date, "loyalty_status": "Gold",
        })
        .to_string()
        .into_bytes()
    };
    let not_utf8: Vec<u8> = b"{\"first_name\": \"\xff\xfe\x00broken\"}".to_vec();
    let huge = event(
        &format!("huge.{tag}@example.com"),
        &"x".repeat(200_000),
        "2025-01-01T00:00:00",
    );
    let payloads: Vec<(Vec<u8>, &str)> = vec![
        (
            event(
                &format!("frac.{tag}@example.com"),
                "Frac",
                "2025-12-31T23:59:59.123",
            ),
            "users",
        ),
        (
            event(
                &format!("Case.X.{tag}@Example.com"),
                "Case",
                "2025-01-01T00:00:00",
            ),
            "users",
        ),
        (
            event(
                &format!("case.x.{tag}@example.com"),
                "Case",
                "2025-01-01T00:00:00",
            ),
            "duplicate event",
        ),
        (
            event(
                &format!("CASE.x.{tag}@example.COM"),
                "Other",
                "2025-01-01T00:00:00",
            ),
            "duplicate email",
        ),
        (
            event(
                &format!("emoji.{tag}@example.com"),
                "😀🦀𝔘",
                "2025-01-01T00:00:00",
            ),
            "users",
        ),
        (
            event(
                &format!("sep.{tag}@example.com"),
                "a|b\\N\\",
                "2025-01-01T00:00:00",
            ),
            "users",
        ),
        (
            event(
                &format!("old.{tag}@example.com"),
                "Old",
                "1899-12-31T23:59:59",
            ),
            "registration_date before 1900-01-01",
        ),
        (
            event(
                &format!("nul.{tag}@example.com"),
                "nul\u{0}byte",
                "2025-01-01T00:00:00",
            ),
            "first_name contains a NUL character",
        ),
        (not_utf8.clone(), "payload is not valid UTF-8"),
        (huge, "payload of"),
        (
            event(
                &format!("frac.{tag}@example.com"),
                "Frac",
                "2025-12-31T23:59:59.123",
            ),
            "duplicate event",
        ),
    ];
    let bytes: Vec<Vec<u8>> = payloads.iter().map(|(p, _)| p.clone()).collect();
    support::produce_bytes(&topic, &bytes).await;
    let mut args = stream_args(&topic, &topic);
    args.push("--available-now");
    let out = support::run_ok(&args);
    assert!(
        totals(&out).contains("4 users written, 7 events quarantined"),
        "{out}"
    );

    let users: Vec<(String, String, chrono::NaiveDateTime)> = sqlx::query_as(
        "SELECT email, first_name, registration_date FROM users WHERE email LIKE '%.' || $1 || '@example.com' ORDER BY email",
    )
    .bind(&tag)
    .fetch_all(&pg)
    .await
    .expect("users");
    let emails: Vec<&str> = users.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(
        emails,
        [
            format!("case.x.{tag}@example.com"),
            format!("emoji.{tag}@example.com"),
            format!("frac.{tag}@example.com"),
            format!("sep.{tag}@example.com"),
        ],
        "e-mails are stored lower-case"
    );
    let by_email = |e: &str| users.iter().find(|(m, _, _)| m.starts_with(e)).expect(e);
    assert_eq!(by_email("emoji").1, "😀🦀𝔘");
    assert_eq!(by_email("sep").1, "a|b\\N\\");
    assert_eq!(
        by_email("frac").2.to_string(),
        "2025-12-31 23:59:59.123",
        "fractional seconds kept"
    );

    let q: Vec<(i64, String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT kafka_offset, reason, raw_bytes FROM users_quarantine WHERE kafka_topic = $1 ORDER BY kafka_offset",
    )
    .bind(&topic)
    .fetch_all(&pg)
    .await
    .expect("quarantine");
    for (offset, (_, expected)) in payloads.iter().enumerate() {
        let got = q.iter().find(|(o, _, _)| *o == offset as i64);
        if *expected == "users" {
            assert!(got.is_none(), "offset {offset} quarantined: {got:?}");
        } else {
            let (_, reason, _) = got.unwrap_or_else(|| panic!("offset {offset} not quarantined"));
            assert!(
                reason.starts_with(expected),
                "offset {offset}: {reason:?}, expected {expected:?}"
            );
        }
    }
    let (_, _, raw) = q
        .iter()
        .find(|(_, r, _)| r.contains("UTF-8"))
        .expect("not UTF-8");
    assert_eq!(
        raw.as_deref(),
        Some(not_utf8.as_slice()),
        "original bytes kept"
    );
    clean_up(&pg, &topic, &tag).await;
    sqlx::query("DELETE FROM users WHERE email LIKE '%.' || $1 || '@example.com'")
        .bind(&tag)
        .execute(&pg)
        .await
        .expect("clean up");
}
