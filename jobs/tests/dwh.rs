//! `jobs dwh` against the local stack: the change topics Debezium fills loaded into the
//! data vault. Every check reads the source and the warehouse directly (rows as
//! PostgreSQL renders them, the vault's own tables), never the job's bookkeeping.

mod support;

use std::time::Duration;

use common::schema::TABLES;
use sqlx::PgPool;
use support::faults::{Job, kill9, stack_up};
use support::workload::random_workload;

async fn dwh_pool() -> PgPool {
    let mut pg = support::postgres();
    pg.database = support::var("DWH_DB");
    pg.schema = "public".into();
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(pg.connect_options().expect("warehouse settings"))
        .await
        .expect("connect to the warehouse")
}

fn dwh_available_now() -> String {
    support::run_ok(&["dwh", "--available-now"])
}

/// Each row as PostgreSQL's text of the whole row, in key order.
async fn rows(pool: &PgPool, relation: &str, key: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT t::text FROM {relation} t ORDER BY {key}"
    )))
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("read {relation}: {e}"))
}

async fn assert_current_views_equal_sources(pg: &PgPool, dwh: &PgPool) {
    for t in &TABLES {
        let source = rows(pg, t.name, t.primary_key).await;
        let vault = rows(dwh, &format!("current_{}", t.name), t.primary_key).await;
        assert_eq!(source.len(), vault.len(), "{}: row counts differ", t.name);
        for (s, v) in source.iter().zip(&vault) {
            assert_eq!(s, v, "{}: the vault's current row differs", t.name);
        }
    }
}

/// Rows of every hub, link and satellite, for "nothing was added" checks.
async fn vault_counts(dwh: &PgPool) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename ~ '^(hub|link|sat)_' ORDER BY 1",
    )
    .fetch_all(dwh)
    .await
    .expect("list vault tables");
    assert!(tables.len() >= 12, "vault tables: {tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(dwh)
            .await
            .expect("count");
        out.push((t, n));
    }
    out
}

/// Two consecutive rows of one key with the same hash diff: a duplicate.
async fn assert_no_repeated_satellite_rows(dwh: &PgPool) {
    for (t, _) in vault_counts(dwh).await {
        if !t.starts_with("sat_") {
            continue;
        }
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM (SELECT hashdiff, lag(hashdiff) OVER (PARTITION BY hk \
             ORDER BY seq) AS prev FROM {t}) x WHERE hashdiff = prev"
        )))
        .fetch_one(dwh)
        .await
        .expect("repeated rows");
        assert_eq!(
            n, 0,
            "{t} has {n} rows repeating the previous state of their key"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_random_workload_the_current_views_equal_the_source_and_a_rerun_adds_nothing() {
    let (pg, dwh) = (support::pg_pool().await, dwh_pool().await);
    dwh_available_now();
    let tag = support::unique("dwhrand");
    random_workload(&pg, &tag, 31, 20).await;
    let out = dwh_available_now();
    assert!(out.contains("vault load:"), "{out}");
    assert_current_views_equal_sources(&pg, &dwh).await;
    assert_no_repeated_satellite_rows(&dwh).await;
    let before = vault_counts(&dwh).await;
    dwh_available_now();
    assert_eq!(vault_counts(&dwh).await, before, "a second run added rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_updated_n_times_has_n_plus_1_satellite_rows_and_a_past_state_is_queryable() {
    let (pg, dwh) = (support::pg_pool().await, dwh_pool().await);
    let tag = support::unique("dwhkey");
    // A business key can come back (an earlier test's TRUNCATE and reload restarts the
    // ids): its earlier life stays in the vault, so only this test's rows are compared.
    let (since,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(&pg)
        .await
        .expect("now");
    let (user,): (i32,) = sqlx::query_as(
        "INSERT INTO users (first_name, last_name, email, registration_date, loyalty_status) \
         VALUES ('Ann', 'Key', $1, '2025-01-02 03:04:05.678901', 'Bronze') RETURNING user_id",
    )
    .bind(format!("{tag}@example.com"))
    .fetch_one(&pg)
    .await
    .expect("insert user");
    let mut between = None;
    for (i, status) in ["Silver", "Gold", "Bronze"].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sqlx::query("UPDATE users SET loyalty_status = $2 WHERE user_id = $1")
            .bind(user)
            .bind(status)
            .execute(&pg)
            .await
            .expect("update");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if i == 0 {
            let (now,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
                .fetch_one(&pg)
                .await
                .expect("now");
            between = Some(now);
        }
    }
    // Re-sent without a change (an UPDATE that sets the same values): no new state.
    sqlx::query("UPDATE users SET loyalty_status = loyalty_status WHERE user_id = $1")
        .bind(user)
        .execute(&pg)
        .await
        .expect("no-op update");
    dwh_available_now();
    // The hash key is the MD5 of the normalised business key, computed here on its own.
    let (hk,): (String,) = sqlx::query_as("SELECT md5(upper(trim($1::text)))")
        .bind(user.to_string())
        .fetch_one(&pg)
        .await
        .expect("md5");
    let states: Vec<(Option<String>, bool)> = sqlx::query_as(
        "SELECT loyalty_status::text, is_deleted FROM sat_user WHERE hk = $1 \
         AND applied_ts >= $2 ORDER BY seq",
    )
    .bind(&hk)
    .bind(since)
    .fetch_all(&dwh)
    .await
    .expect("satellite rows");
    let statuses: Vec<&str> = states.iter().filter_map(|s| s.0.as_deref()).collect();
    assert_eq!(
        statuses,
        ["Bronze", "Silver", "Gold", "Bronze"],
        "{states:?}"
    );
    let (hub_key,): (i32,) = sqlx::query_as("SELECT user_id FROM hub_user WHERE hk = $1")
        .bind(&hk)
        .fetch_one(&dwh)
        .await
        .expect("the hub row under the independently computed hash key");
    assert_eq!(hub_key, user);
    let (past,): (String,) =
        sqlx::query_as("SELECT loyalty_status::text FROM users_as_of($1) WHERE user_id = $2")
            .bind(between.expect("a time between the updates"))
            .bind(user)
            .fetch_one(&dwh)
            .await
            .expect("point-in-time query");
    assert_eq!(
        past, "Silver",
        "as of a time between the first and second update"
    );

    // A delete is a new satellite row, not a destructive update.
    sqlx::query("DELETE FROM users WHERE user_id = $1")
        .bind(user)
        .execute(&pg)
        .await
        .expect("delete");
    dwh_available_now();
    let (rows, deleted): (i64, bool) = sqlx::query_as(
        "SELECT count(*) OVER (), is_deleted FROM sat_user WHERE hk = $1 AND applied_ts >= $2 \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(&hk)
    .bind(since)
    .fetch_one(&dwh)
    .await
    .expect("after the delete");
    assert_eq!((rows, deleted), (5, true));
    let (gone,): (i64,) = sqlx::query_as("SELECT count(*) FROM current_users WHERE user_id = $1")
        .bind(user)
        .fetch_one(&dwh)
        .await
        .expect("current view");
    assert_eq!(gone, 0);
    let (hubs,): (i64,) = sqlx::query_as("SELECT count(*) FROM hub_user WHERE hk = $1")
        .bind(&hk)
        .fetch_one(&dwh)
        .await
        .expect("hub");
    assert_eq!(hubs, 1, "hubs keep every key ever seen");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_spark_connect_server_and_of_the_job_loses_and_repeats_nothing() {
    let (pg, dwh) = (support::pg_pool().await, dwh_pool().await);
    dwh_available_now();
    let tag = support::unique("dwhkill");
    let job = Job::spawn("dwh");
    random_workload(&pg, &tag, 41, 8).await;
    kill9("SparkConnectServer");
    random_workload(&pg, &tag, 42, 8).await;
    stack_up();
    random_workload(&pg, &tag, 43, 8).await;
    job.kill9();
    let job = Job::spawn("dwh");
    random_workload(&pg, &tag, 44, 8).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    job.kill9();
    dwh_available_now();
    assert_current_views_equal_sources(&pg, &dwh).await;
    assert_no_repeated_satellite_rows(&dwh).await;
}
