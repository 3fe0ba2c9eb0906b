//! `jobs replicate` and `jobs marts` against the local stack: replicas equal their
//! sources, marts equal the same aggregation done independently in PostgreSQL,
//! reruns change nothing, readers never see a missing or short table, bad input is
//! refused before anything runs. Needs the default data set (`datagen pg`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::schema::TABLES;
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

async fn assert_replicas_equal_sources(pg: &PgPool, my: &MySqlPool) {
    for t in &TABLES {
        support::rows::assert_replica_equals_source(pg, my, t).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_copies_every_table_exactly_and_a_rerun_changes_nothing() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    let out = support::run_ok(&["replicate"]);
    for t in &TABLES {
        assert!(out.contains(t.name), "summary lacks {}: {out}", t.name);
    }
    assert_replicas_equal_sources(&pg, &my).await;
    // The verification alone agrees, one line per table (jobs/tests/verify.rs: when not).
    let verified = support::run_ok(&["replicate", "--verify-only"]);
    for t in &TABLES {
        assert!(
            verified
                .lines()
                .any(|l| l.starts_with(t.name) && l.contains(" rows  verified")),
            "{} not verified: {verified}",
            t.name
        );
    }

    // The MySQL DDL of infra/db survives: keys and exact types, no LONGTEXT.
    let (key,): (String,) = sqlx::query_as(
        "SELECT COLUMN_KEY FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'order_id'",
    )
    .fetch_one(&my)
    .await
    .expect("column");
    assert_eq!(key, "PRI");
    let (ty,): (String,) = sqlx::query_as(
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'total_amount'",
    )
    .fetch_one(&my)
    .await
    .expect("column");
    assert_eq!(ty, "decimal(12,2)");

    // Idempotent: a second run leaves the same state, and no staging table behind.
    support::run_ok(&["replicate"]);
    assert_replicas_equal_sources(&pg, &my).await;
    let (leftovers,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND (TABLE_NAME LIKE '%\\_\\_stg\\_%' OR TABLE_NAME LIKE '%\\_\\_old\\_%')",
    )
    .fetch_one(&my)
    .await
    .expect("tables");
    assert_eq!(leftovers, 0);
}

/// The tables of a replication and the marts of a build run side by side in Spark, not
/// one after the other: the client's blocking calls each run on their own thread. Read
/// from Spark's own record of the run's jobs (the application's REST API).
#[test]
fn the_units_of_a_run_run_side_by_side_in_spark() {
    for (job, units) in [("replicate", TABLES.len()), ("marts", 3)] {
        let (out, stdout, stderr) = support::run(&[job]);
        assert!(out.status.success(), "jobs {job}: {stdout}{stderr}");
        let tag = support::run_tag(&stderr);
        let spark_jobs = support::spark_jobs_of_run(&tag);
        assert!(
            spark_jobs.len() >= units,
            "jobs {job}: {} Spark jobs tagged {tag}, expected one per unit ({units})",
            spark_jobs.len()
        );
        let overlap = support::max_overlap(&spark_jobs);
        assert!(
            overlap >= 2,
            "jobs {job}: its Spark jobs ran one at a time: {spark_jobs:?}"
        );
    }
}

#[test]
fn overlap_counts_intervals_open_at_one_instant() {
    let iv = |s: &str, e: &str| (s.to_string(), e.to_string());
    assert_eq!(support::max_overlap(&[]), 0);
    assert_eq!(support::max_overlap(&[iv("a", "b"), iv("b", "c")]), 1);
    assert_eq!(
        support::max_overlap(&[iv("a", "d"), iv("b", "c"), iv("b", "e")]),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_never_see_a_missing_or_short_table_during_replication() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    support::run_ok(&["replicate", "--table", "order_details"]);
    let (expected,): (i64,) = sqlx::query_as("SELECT count(*) FROM order_details")
        .fetch_one(&pg)
        .await
        .expect("count");
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (my, done) = (my.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let r: Result<(i64,), _> =
                    sqlx::query_as("SELECT CAST(COUNT(*) AS SIGNED) FROM order_details")
                        .fetch_one(&my)
                        .await;
                seen.push(r.map(|(c,)| c).map_err(|e| e.to_string()));
            }
            seen
        })
    };
    support::run_ok(&["replicate", "--table", "order_details"]);
    done.store(true, Ordering::SeqCst);
    let seen = poller.await.expect("poller");
    assert!(
        seen.len() > 10,
        "the poller ran only {} queries",
        seen.len()
    );
    for s in &seen {
        assert_eq!(s, &Ok(expected), "a reader saw {s:?} during the swap");
    }
}

#[tokio::test]
async fn unknown_table_or_mart_is_refused_before_anything_runs() {
    let (out, _, stderr) = support::run(&["replicate", "--table", "users; DROP TABLE users"]);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid value"), "{stderr}");
    let (out, _, stderr) = support::run(&["marts", "--mart", "mart_nope"]);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid value"), "{stderr}");
}

#[tokio::test]
async fn unreachable_spark_connect_fails_with_one_line_and_no_staging_left() {
    let my = support::mysql_pool().await;
    let (out, _, stderr) = support::run(&[
        "--spark-remote",
        "sc://localhost:1",
        "replicate",
        "--table",
        "products",
    ]);
    assert!(!out.status.success());
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("Spark Connect"), "{stderr}");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME LIKE 'products\\_\\_stg\\_%'",
    )
    .fetch_one(&my)
    .await
    .expect("tables");
    assert_eq!(n, 0);
}

/// Rows of a query as text, sorted, for exact comparison across databases.
async fn pg_rows(pool: &PgPool, sql: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .expect("pg query");
    let mut v: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
    v.sort();
    v
}

async fn mysql_rows(pool: &MySqlPool, sql: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .expect("mysql query");
    let mut v: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
    v.sort();
    v
}

/// Each mart's columns, in order, as the tests read them back from MySQL.
const MART_COLUMNS: [(&str, &str); 3] = [
    (
        "mart_user_activity",
        "user_id, first_name, last_name, status, order_count, total_spent",
    ),
    (
        "mart_product_sales",
        "product_id, name, status, total_quantity_sold, total_sales",
    ),
    (
        "mart_average_check",
        "status, loyalty_status, average_check",
    ),
];

/// The rows of `table`, holding mart `mart`, as `|`-joined text, sorted.
async fn mart_rows(pool: &MySqlPool, mart: &str, table: &str) -> Vec<String> {
    let (_, columns) = MART_COLUMNS
        .iter()
        .find(|(m, _)| *m == mart)
        .expect("a known mart");
    mysql_rows(
        pool,
        &format!("SELECT CONCAT_WS('|', {columns}) FROM {table}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn marts_equal_the_same_aggregation_done_in_postgres() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    // Marts are built from the replicas; make them current first.
    support::run_ok(&["replicate"]);
    let out = support::run_ok(&["marts"]);
    assert!(out.contains("built 3 mart(s)"), "{out}");

    let expected = pg_rows(
        &pg,
        "SELECT concat_ws('|', u.user_id, u.first_name, u.last_name, o.status, count(*), sum(o.total_amount)) \
         FROM orders o JOIN users u USING (user_id) GROUP BY u.user_id, u.first_name, u.last_name, o.status",
    )
    .await;
    let actual = mart_rows(&my, "mart_user_activity", "mart_user_activity").await;
    assert!(!expected.is_empty());
    assert_eq!(actual, expected, "mart_user_activity");

    let expected = pg_rows(
        &pg,
        "SELECT concat_ws('|', p.product_id, p.name, o.status, sum(d.quantity), sum(d.total_price)) \
         FROM order_details d JOIN orders o USING (order_id) JOIN products p USING (product_id) \
         GROUP BY p.product_id, p.name, o.status",
    )
    .await;
    let actual = mart_rows(&my, "mart_product_sales", "mart_product_sales").await;
    assert_eq!(actual, expected, "mart_product_sales");

    // Averages to 6 decimals, rounded half up on both sides.
    let expected = pg_rows(
        &pg,
        "SELECT concat_ws('|', o.status, u.loyalty_status, round(avg(o.total_amount), 6)) \
         FROM orders o JOIN users u USING (user_id) GROUP BY o.status, u.loyalty_status",
    )
    .await;
    let actual = mart_rows(&my, "mart_average_check", "mart_average_check").await;
    assert_eq!(actual, expected, "mart_average_check");

    // Idempotent: a second build gives the same rows.
    support::run_ok(&["marts"]);
    let again = mart_rows(&my, "mart_average_check", "mart_average_check").await;
    assert_eq!(again, actual);
}

/// The benchmark baseline must do the same work as the real job, or the comparison in
/// docs/BENCHMARKS.md means nothing: its plain queries give the same marts.
#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_baseline_builds_the_same_marts() {
    let my = support::mysql_pool().await;
    support::run_ok(&["replicate"]);
    support::run_ok(&["marts"]);
    support::run_ok(&["marts", "--baseline"]);
    for (mart, _) in MART_COLUMNS {
        let ours = mart_rows(&my, mart, mart).await;
        let baseline = mart_rows(&my, mart, &format!("{mart}__baseline")).await;
        assert!(!ours.is_empty(), "{mart}");
        assert_eq!(baseline, ours, "{mart}");
        sqlx::query(AssertSqlSafe(format!("DROP TABLE {mart}__baseline")))
            .execute(&my)
            .await
            .expect("drop the baseline table");
    }
}

/// Runs `jobs` with `args` twice at the same moment; returns both outputs.
fn run_twice_at_once(args: &[&str]) -> [(std::process::Output, String); 2] {
    let spawn = || {
        support::jobs(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start jobs")
    };
    let (a, b) = (spawn(), spawn());
    [a, b].map(|c| {
        let out = c.wait_with_output().expect("wait");
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replications_started_at_once_both_finish_with_a_verified_copy() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    for (out, text) in run_twice_at_once(&["replicate"]) {
        assert!(out.status.success(), "{text}");
    }
    assert_replicas_equal_sources(&pg, &my).await;
    for (out, text) in run_twice_at_once(&["marts"]) {
        assert!(out.status.success(), "{text}");
    }
}

/// A MySQL session of the test's own holding the lock a run of `jobs` takes for
/// `table` (as another run would), until dropped.
async fn hold_table_lock(table: &str) -> sqlx::pool::PoolConnection<sqlx::MySql> {
    let my = support::mysql_pool().await;
    let mut conn = my.acquire().await.expect("connection");
    let name = format!("finals.{}.{table}", support::var("MYSQL_DB"));
    let (got,): (i64,) = sqlx::query_as("SELECT GET_LOCK(?, 5)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .expect("GET_LOCK");
    assert_eq!(got, 1);
    conn
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_get_its_table_or_swap_it_fails_clearly_and_changes_nothing() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    support::run_ok(&["replicate", "--table", "products"]);
    let products = common::schema::table("products").expect("products");
    let before = support::rows::mysql(&my, products).await;

    // Another run holds the table: this one waits its bound, then says so.
    let held = hold_table_lock("products").await;
    let (out, _, stderr) =
        support::run(&["replicate", "--table", "products", "--lock-wait-secs", "2"]);
    drop(held);
    assert!(!out.status.success());
    assert!(
        stderr.contains("MySQL table products is busy: another run has held it for more than 2s"),
        "{stderr}"
    );

    // A reader holds the table: the swap gives up after its bound, the replica stays.
    let mut reader = my.acquire().await.expect("connection");
    sqlx::query("LOCK TABLES products READ")
        .execute(&mut *reader)
        .await
        .expect("lock");
    let (out, _, stderr) =
        support::run(&["replicate", "--table", "products", "--swap-wait-secs", "2"]);
    sqlx::query("UNLOCK TABLES")
        .execute(&mut *reader)
        .await
        .expect("unlock");
    drop(reader);
    assert!(!out.status.success());
    assert!(
        stderr.contains("readers held it for more than 2s"),
        "{stderr}"
    );
    assert_eq!(support::rows::mysql(&my, products).await, before);
    let (leftovers,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME LIKE 'products\\_\\_%'",
    )
    .fetch_one(&my)
    .await
    .expect("tables");
    assert_eq!(leftovers, 0);
    support::rows::assert_replica_equals_source(&pg, &my, products).await;
}

/// Removes what the live writer below left: its users (e-mails `live_<run>.<i>@…`) and
/// their orders, also after a failed run.
async fn remove_live_rows(pg: &PgPool) {
    let live = "email ~ '^live_[0-9]+_[0-9]+\\.'";
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM orders WHERE user_id IN (SELECT user_id FROM users WHERE {live})"
    )))
    .execute(pg)
    .await
    .expect("delete live orders");
    sqlx::query(AssertSqlSafe(format!("DELETE FROM users WHERE {live}")))
        .execute(pg)
        .await
        .expect("delete live users");
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_of_a_busy_source_is_one_point_in_time() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    remove_live_rows(&pg).await;
    let tag = support::unique("live");

    // ~100 transactions/s, each registering a user with a pending order and completing
    // the previous transaction's order: in every committed state, the writer's completed
    // orders are its orders minus one, and every order has its user. A copy that mixed
    // two points in time (tables or partitions read at different moments) breaks one
    // of these.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pg, stop, tag) = (pg.clone(), stop.clone(), tag.clone());
        tokio::spawn(async move {
            let mut previous: Option<i32> = None;
            let mut writes = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut tx = pg.begin().await.expect("begin");
                let (order,): (i32,) = sqlx::query_as(
                    "WITH u AS (INSERT INTO users (first_name, last_name, email, registration_date, loyalty_status) \
                     VALUES ('Live', 'Writer', $1, now(), 'Gold') RETURNING user_id) \
                     INSERT INTO orders (user_id, order_date, total_amount, status) \
                     SELECT user_id, now(), 1.00, 'Pending' FROM u RETURNING order_id",
                )
                .bind(format!("{tag}.{writes}@example.com"))
                .fetch_one(&mut *tx)
                .await
                .expect("insert");
                if let Some(p) = previous {
                    sqlx::query("UPDATE orders SET status = 'Completed' WHERE order_id = $1")
                        .bind(p)
                        .execute(&mut *tx)
                        .await
                        .expect("complete");
                }
                tx.commit().await.expect("commit");
                previous = Some(order);
                writes += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            writes
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (out, stdout, stderr) = support::run(&["replicate"]);
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.expect("writer");

    let (orders, completed): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(o.status = 'Completed'), 0) AS SIGNED) \
         FROM orders o JOIN users u ON u.user_id = o.user_id WHERE u.email LIKE CONCAT(?, '.%')",
    )
    .bind(&tag)
    .fetch_one(&my)
    .await
    .expect("count");
    let (orphans,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS SIGNED) FROM orders o LEFT JOIN users u ON u.user_id = o.user_id \
         WHERE u.user_id IS NULL",
    )
    .fetch_one(&my)
    .await
    .expect("orphans");
    remove_live_rows(&pg).await;
    support::run_ok(&["replicate"]);

    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(writes > 50, "only {writes} writes happened");
    assert!(orders > 0, "the copy holds none of the writer's orders");
    assert_eq!(
        completed,
        orders - 1,
        "orders copied from two points in time"
    );
    assert_eq!(
        orphans, 0,
        "orders and users copied from two points in time"
    );
    assert_replicas_equal_sources(&pg, &my).await;
}

/// Values from outside the happy path, each a class that once broke or could break
/// replication: fractional seconds, 4-byte characters, separators, backslashes and
/// `\N` inside values, control characters, quotes, e-mails that only a
/// case-insensitive or accent-insensitive collation would equate.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_but_valid_source_rows_replicate_exactly() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    let tag = support::unique("hostile");
    let rows: [(&str, &str, &str, Option<&str>, &str); 9] = [
        (
            "Frac",
            "Seconds",
            "frac",
            Some("+1"),
            "2025-12-31 23:59:59.123",
        ),
        ("Frac", "Micro", "micro", None, "2025-12-31 23:59:59.000001"),
        (
            "😀🦀",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "emoji",
            Some("+1"),
            "2024-02-29 12:00:00",
        ),
        ("a|b", "c", "sep1", Some("|"), "2024-01-01 00:00:00"),
        ("a", "b|c", "sep2", Some("\\N"), "2024-01-01 00:00:00"),
        (
            "back\\slash",
            "tab\tnew\nline",
            "ctrl",
            Some("\\"),
            "2024-01-01 00:00:00",
        ),
        (
            "O'Brien",
            "\"Quoted\"",
            "quote",
            Some("'"),
            "2024-01-01 00:00:00",
        ),
        ("José", "Accent", "josé", None, "2024-01-01 00:00:00"),
        ("Jose", "Plain", "jose", None, "2024-01-01 00:00:00"),
    ];
    for (first, last, mail, phone, date) in rows {
        sqlx::query(
            "INSERT INTO users (first_name, last_name, email, phone, registration_date, loyalty_status) \
             VALUES ($1, $2, $3, $4, $5::timestamp, 'Silver')",
        )
        .bind(first)
        .bind(last)
        .bind(format!("{mail}.{tag}@example.com"))
        .bind(phone)
        .bind(date)
        .execute(&pg)
        .await
        .expect("insert a hostile row");
    }
    // ß and ss are one letter for utf8mb4_unicode_ci; PostgreSQL keeps them apart.
    for mail in ["strasse", "straße"] {
        sqlx::query(
            "INSERT INTO users (first_name, last_name, email, registration_date, loyalty_status) \
             VALUES ('S', 'S', $1, '2024-01-01', 'Gold')",
        )
        .bind(format!("{mail}.{tag}@example.com"))
        .execute(&pg)
        .await
        .expect("insert");
    }
    let users = common::schema::table("users").expect("users");
    let (out, stdout, stderr) = support::run(&["replicate", "--table", "users"]);
    let (source, replica) = (
        support::rows::postgres(&pg, users).await,
        support::rows::mysql(&my, users).await,
    );
    sqlx::query("DELETE FROM users WHERE email LIKE '%.' || $1 || '@example.com'")
        .bind(&tag)
        .execute(&pg)
        .await
        .expect("clean up");
    support::run_ok(&["replicate", "--table", "users"]);

    assert!(out.status.success(), "{stdout}\n{stderr}");
    let hostile = source
        .iter()
        .filter(|r| matches!(&r[3], support::rows::Value::Text(e) if e.contains(&tag)))
        .count();
    assert_eq!(hostile, 11);
    assert_eq!(replica.len(), source.len());
    for (s, r) in source.iter().zip(&replica) {
        assert_eq!(s, r, "a row differs between PostgreSQL and MySQL");
    }
}
