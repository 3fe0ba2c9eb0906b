//! `jobs replicate` and `jobs marts` against the local stack: replicas equal their
//! sources, marts equal the same aggregation done independently in PostgreSQL,
//! reruns change nothing, readers never see a missing or short table, bad input is
//! refused before anything runs. Needs the default data set (`datagen pg`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::schema::TABLES;
use jobs::fingerprint::{mysql_fingerprint, postgres_fingerprint};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

async fn pg_max_key(pool: &PgPool, table: &str, pk: &str) -> i64 {
    let (max,): (Option<i64>,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT max({pk})::bigint FROM {table}"
    )))
    .fetch_one(pool)
    .await
    .expect("max key");
    max.unwrap_or(0)
}

async fn assert_replicas_equal_sources(pg: &PgPool, my: &MySqlPool) {
    for t in &TABLES {
        let max = pg_max_key(pg, t.name, t.primary_key).await;
        let source = postgres_fingerprint(pg, t, max)
            .await
            .expect("pg fingerprint");
        let replica = mysql_fingerprint(my, t, t.name)
            .await
            .expect("mysql fingerprint");
        assert!(
            source.rows > 0,
            "{} is empty in PostgreSQL: run `datagen pg`",
            t.name
        );
        assert_eq!(source, replica, "{} differs", t.name);
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
         AND (TABLE_NAME LIKE '%\\_\\_staging' OR TABLE_NAME LIKE '%\\_\\_old')",
    )
    .fetch_one(&my)
    .await
    .expect("tables");
    assert_eq!(leftovers, 0);
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
         AND TABLE_NAME = 'products__staging'",
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
