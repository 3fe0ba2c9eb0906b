//! The PostgreSQL hot standby of the local stack (POSTGRES_STANDBY_PORT, 5433), which
//! `jobs replicate` reads with POSTGRES_READ_FROM=standby: it follows the primary
//! within a second; a replication from it equals the primary, compared row by row in
//! both databases; and a standby that is down, lags beyond the bound or is no standby
//! at all fails the job with one line saying which. Each test that breaks the standby
//! (stops it, pauses its replay) restores it, even when it fails; the primary is never
//! touched. Needs `make up` and the default data set (`datagen pg`).

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::PostgresSettings;
use common::schema::TABLES;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};

fn standby() -> PostgresSettings {
    let reads = support::postgres_reads();
    PostgresSettings {
        host: reads
            .standby_host
            .clone()
            .unwrap_or_else(|| support::var("POSTGRES_HOST")),
        port: reads.standby_port,
        ..support::postgres()
    }
}

async fn standby_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(standby().connect_options().expect("settings"))
        .await
        .expect("connect to the local stack's PostgreSQL standby (make up)")
}

/// The standby as its superuser, to pause its replay: over the local stack's socket
/// (`$PLATFORM_STATE/postgres-standby/run`, trusted: only this machine's root and
/// postgres reach it), as `make status` connects.
async fn standby_admin() -> PgPool {
    let state = std::env::var("PLATFORM_STATE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| support::workspace_root().join(".local"));
    let options = PgConnectOptions::new()
        .socket(state.join("postgres-standby/run"))
        .port(standby().port)
        .username(&support::var("POSTGRES_ADMIN_USER"))
        .database("postgres");
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect to the standby as its admin")
}

/// `jobs` reading from the standby, as `.env` configures it (stated, so the test
/// holds whatever the default is).
fn jobs_on_standby(args: &[&str], env: &[(&str, &str)]) -> (Output, String, String) {
    let mut cmd = support::jobs(args);
    cmd.env("POSTGRES_READ_FROM", "standby");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jobs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The one `error:` line of a failed run.
fn error_line(out: &Output, stderr: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "exit code: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

/// The local stack's command for the standby alone (`stack.sh standby start|stop`),
/// with the same PLATFORM_STATE as the running stack.
fn standby_command(action: &str) {
    let out = Command::new(support::workspace_root().join("infra/local/stack.sh"))
        .args(["standby", action])
        .output()
        .expect("run infra/local/stack.sh");
    assert!(
        out.status.success(),
        "stack.sh standby {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the standby again when dropped, so a failed test leaves it running.
struct StartStandbyOnDrop;

impl Drop for StartStandbyOnDrop {
    fn drop(&mut self) {
        standby_command("start");
    }
}

/// Resumes the standby's replay when dropped (a no-op when it is not paused).
struct ResumeReplayOnDrop;

impl Drop for ResumeReplayOnDrop {
    fn drop(&mut self) {
        // Drop cannot await: a runtime of its own on a thread of its own.
        let resumed = std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(async {
                    sqlx::raw_sql("SELECT pg_wal_replay_resume()")
                        .execute(&standby_admin().await)
                        .await
                        .map(|_| ())
                })
        })
        .join();
        if !matches!(resumed, Ok(Ok(()))) {
            eprintln!("could not resume the standby's replay: make standby-rebuild");
        }
    }
}

/// A scratch table of this test's own in the primary's platform schema.
struct Scratch {
    name: String,
}

impl Scratch {
    async fn create(pg: &PgPool) -> Self {
        let name = support::unique("standby_probe");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE {name} (id INT PRIMARY KEY, note TEXT NOT NULL)"
        )))
        .execute(pg)
        .await
        .expect("create the scratch table");
        Self { name }
    }

    async fn drop_table(self, pg: &PgPool) {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {}", self.name)))
            .execute(pg)
            .await
            .expect("drop the scratch table");
    }
}

/// The note of row `id` on the standby, when the table and row are there.
async fn note_on_standby(standby: &PgPool, table: &str, id: i32) -> Option<String> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT note FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(standby)
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_on_the_primary_is_readable_on_the_standby_within_a_second() {
    let (pg, standby) = (support::pg_pool().await, standby_pool().await);
    let (in_recovery,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
        .fetch_one(&standby)
        .await
        .expect("query the standby");
    assert!(
        in_recovery,
        "the server on the standby port is not a standby"
    );

    let scratch = Scratch::create(&pg).await;
    for id in 1..=3 {
        let note = support::unique("note");
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} VALUES ($1, $2)",
            scratch.name
        )))
        .bind(id)
        .bind(&note)
        .execute(&pg)
        .await
        .expect("insert on the primary");
        // The insert has committed: from now on the clock runs.
        let committed = Instant::now();
        loop {
            if note_on_standby(&standby, &scratch.name, id)
                .await
                .as_deref()
                == Some(&note)
            {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(1),
                "row {id} of {} not on the standby 1 s after its commit",
                scratch.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "row {id} on the standby {} ms after its commit",
            committed.elapsed().as_millis()
        );
    }
    // The standby refuses writes: it is read-only.
    let write = sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {} VALUES (99, 'x')",
        scratch.name
    )))
    .execute(&standby)
    .await;
    assert!(write.is_err(), "the standby accepted a write");
    scratch.drop_table(&pg).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_from_the_standby_gives_replicas_equal_to_the_primary() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    let (out, stdout, stderr) = jobs_on_standby(&["replicate"], &[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("reading PostgreSQL from the standby"),
        "the run did not read the standby:\n{stderr}"
    );
    // Rows read directly from the primary and from MySQL, not the job's fingerprints.
    for t in &TABLES {
        support::rows::assert_replica_equals_source(&pg, &my, t).await;
    }
    // The verification from the standby agrees.
    let (out, stdout, stderr) = jobs_on_standby(&["replicate", "--verify-only"], &[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("verified {} table(s)", TABLES.len())),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_standby_fails_the_job_with_one_line_then_serves_again() {
    let restart = StartStandbyOnDrop;
    standby_command("stop");
    let (out, _, stderr) = jobs_on_standby(
        &[
            "replicate",
            "--verify-only",
            "--table",
            "product_categories",
        ],
        &[],
    );
    let line = error_line(&out, &stderr);
    assert!(
        line.contains("the PostgreSQL standby")
            && line.contains(&standby().port.to_string())
            && line.contains("is not reachable")
            && line.contains("make standby-rebuild"),
        "{line}"
    );
    drop(restart);
    // Started again, it is usable at once: `jobs check` of the standby passes.
    let (out, stdout, stderr) = jobs_on_standby(&["check", "--service", "postgres-standby"], &[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_lagging_beyond_the_bound_fails_the_job_with_one_line() {
    let (pg, admin) = (support::pg_pool().await, standby_admin().await);
    // Whatever happens below, replay resumes (a paused standby would stall the others).
    let resume = ResumeReplayOnDrop;
    sqlx::raw_sql("SELECT pg_wal_replay_pause()")
        .execute(&admin)
        .await
        .expect("pause the standby's replay");
    // WAL the paused standby cannot have replayed.
    let scratch = Scratch::create(&pg).await;
    let started = Instant::now();
    let (out, _, stderr) = jobs_on_standby(
        &[
            "replicate",
            "--verify-only",
            "--table",
            "product_categories",
        ],
        &[("POSTGRES_STANDBY_MAX_LAG_SECS", "2")],
    );
    let took = started.elapsed();
    drop(resume);
    scratch.drop_table(&pg).await;
    let line = error_line(&out, &stderr);
    assert!(
        line.contains("lags") && line.contains("POSTGRES_STANDBY_MAX_LAG_SECS"),
        "{line}"
    );
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_not_in_recovery_is_refused_as_standby() {
    // The primary's port as the standby's: what a promoted standby looks like.
    let port = support::var("POSTGRES_PORT");
    let (out, _, stderr) = jobs_on_standby(
        &[
            "replicate",
            "--verify-only",
            "--table",
            "product_categories",
        ],
        &[("POSTGRES_STANDBY_PORT", &port)],
    );
    let line = error_line(&out, &stderr);
    assert!(
        line.contains("is not in recovery (promoted?)") && line.contains("make standby-rebuild"),
        "{line}"
    );
}
