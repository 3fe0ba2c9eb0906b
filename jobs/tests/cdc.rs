//! `jobs cdc` against the local stack: PostgreSQL changes captured by Debezium (Kafka
//! Connect, started by `make up`) and applied by Spark to the MySQL replicas. Every
//! check reads both databases row by row (tests/support/rows.rs), never the job's own
//! bookkeeping. Needs the default data set (`datagen pg`) and the connector running.

mod support;

use std::process::Stdio;
use std::time::Duration;

use common::schema::TABLES;
use sqlx::{MySqlPool, PgPool};
use support::faults::{Job, kill9, stack_up};
use support::workload::random_workload;

async fn assert_replicas_equal_sources(pg: &PgPool, my: &MySqlPool) {
    for t in &TABLES {
        support::rows::assert_replica_equals_source(pg, my, t).await;
    }
}

fn cdc_available_now() -> String {
    support::run_ok(&["cdc", "--available-now"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_random_workload_reaches_mysql_exactly_and_a_rerun_changes_nothing() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    let tag = support::unique("cdcrand");
    random_workload(&pg, &tag, 7, 25).await;
    let out = cdc_available_now();
    assert!(out.contains("applied the changes of 5 table(s)"), "{out}");
    assert_replicas_equal_sources(&pg, &my).await;
    // Nothing new: a second run applies nothing and changes nothing.
    let again = cdc_available_now();
    for line in again.lines().filter(|l| !l.starts_with("applied")) {
        assert!(
            line.split_whitespace().nth(1) == Some("0"),
            "a rerun applied changes: {line}"
        );
    }
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_kafka_connect_the_spark_connect_server_and_the_job_loses_and_duplicates_nothing()
{
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    let tag = support::unique("cdckill");
    let job = Job::spawn("cdc");
    random_workload(&pg, &tag, 11, 10).await;
    kill9("org.apache.kafka.connect.cli.ConnectDistributed");
    random_workload(&pg, &tag, 12, 10).await;
    stack_up(); // Kafka Connect again: Debezium resumes from its last flushed position
    random_workload(&pg, &tag, 13, 10).await;
    kill9("SparkConnectServer");
    random_workload(&pg, &tag, 14, 10).await;
    stack_up();
    job.kill9();
    let job = Job::spawn("cdc");
    random_workload(&pg, &tag, 15, 10).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    job.kill9();
    // Whatever the killed runs left, one more pass ends with equal tables.
    cdc_available_now();
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_change_events_are_quarantined_with_their_bytes_and_stop_nothing() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    let topic = format!(
        "{}.{}.product_categories",
        support::var("CDC_TOPIC_PREFIX"),
        support::postgres().schema
    );
    let bad: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        vec![0xff, 0xfe, b'{', 0x80],
        br#"{"before":null,"after":{"category_id":1,"name":"x"}}"#.to_vec(),
        br#"{"op":"z","after":{"category_id":1,"name":"x"}}"#.to_vec(),
        br#"{"op":"c","after":{"name":"no key"}}"#.to_vec(),
        br#"{"op":"u","after":{"category_id":"seven","name":"x"}}"#.to_vec(),
    ];
    support::produce_bytes(&topic, &bad).await;
    let tag = support::unique("cdcbad");
    sqlx::query("INSERT INTO product_categories (name) VALUES ($1)")
        .bind(&tag)
        .execute(&pg)
        .await
        .expect("insert category");
    cdc_available_now();
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT reason, raw_payload FROM cdc_quarantine WHERE topic = ? \
         ORDER BY kafka_offset DESC LIMIT 6",
    )
    .bind(&topic)
    .fetch_all(&my)
    .await
    .expect("quarantine");
    let mut rows = rows;
    rows.reverse();
    let reasons: Vec<&str> = rows.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "not JSON",
            "not UTF-8",
            "no op field: not a Debezium change event",
            "operation z is not applied",
            "missing key column category_id",
            "key column category_id: not a valid int",
        ]
    );
    let payloads: Vec<Vec<u8>> = rows.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads, bad,
        "the quarantine keeps the bytes as Kafka held them"
    );
    // The good change behind them was applied.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM product_categories WHERE name = ?")
        .bind(&tag)
        .fetch_one(&my)
        .await
        .expect("count");
    assert_eq!(n, 1);
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_in_postgres_stops_only_its_table_until_the_replica_has_it() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    // Also undoes what an interrupted earlier run left (the DDL tests compare both
    // databases' columns with the Rust schema).
    let drop_columns = || async {
        sqlx::query("ALTER TABLE product_categories DROP COLUMN IF EXISTS cdc_note")
            .execute(&pg)
            .await
            .expect("drop PG column");
        sqlx::query("ALTER TABLE product_categories DROP COLUMN IF EXISTS cdc_note")
            .execute(&my)
            .await
            .expect("drop MySQL column");
    };
    drop_columns().await;
    cdc_available_now();
    let tag = support::unique("cdccol");
    sqlx::query("ALTER TABLE product_categories ADD COLUMN cdc_note TEXT")
        .execute(&pg)
        .await
        .expect("add PG column");
    sqlx::query("INSERT INTO product_categories (name, cdc_note) VALUES ($1, 'hello')")
        .bind(&tag)
        .execute(&pg)
        .await
        .expect("insert category");
    sqlx::query(
        "UPDATE users SET phone = '+1-000' WHERE user_id = (SELECT min(user_id) FROM users)",
    )
    .execute(&pg)
    .await
    .expect("update user");
    let (out, _, stderr) = support::run(&["cdc", "--available-now"]);
    assert!(
        !out.status.success(),
        "the run must fail while a table is stopped"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("product_categories") && last.contains("cdc_note"),
        "one line naming the table and the column: {last}"
    );
    // The other tables went on.
    support::rows::assert_replica_equals_source(
        &pg,
        &my,
        common::schema::table("users").expect("users"),
    )
    .await;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM product_categories WHERE name = ?")
        .bind(&tag)
        .fetch_one(&my)
        .await
        .expect("count");
    assert_eq!(n, 0, "nothing of the stopped table was applied");
    // The replica gets the column: the held-back changes arrive, nothing lost.
    sqlx::query("ALTER TABLE product_categories ADD COLUMN cdc_note TEXT")
        .execute(&my)
        .await
        .expect("add MySQL column");
    cdc_available_now();
    let (note,): (Option<String>,) =
        sqlx::query_as("SELECT cdc_note FROM product_categories WHERE name = ?")
            .bind(&tag)
            .fetch_one(&my)
            .await
            .expect("row arrived");
    assert_eq!(note.as_deref(), Some("hello"));
    drop_columns().await;
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_of_a_table_makes_the_change_apply_replay_it_and_tables_stay_equal() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    let tag = support::unique("cdcrep");
    random_workload(&pg, &tag, 21, 5).await;
    // The changes above are not applied yet; the reload copies them, then the apply
    // replays the whole topic over the reloaded table.
    support::run_ok(&["replicate", "--table", "orders"]);
    cdc_available_now();
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_truncated_and_loaded_again_reaches_mysql() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    // TRUNCATE of all five tables and a COPY of the default data set, in one transaction.
    let datagen = testkit::workspace_root().join("target/release/datagen");
    let status = std::process::Command::new(datagen)
        .args(["pg", "--reset"])
        .stderr(Stdio::null())
        .status()
        .expect("datagen pg --reset");
    assert!(status.success(), "datagen pg --reset failed");
    cdc_available_now();
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shop_workload_of_datagen_changes_reaches_mysql() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    let datagen = testkit::workspace_root().join("target/release/datagen");
    let out = std::process::Command::new(datagen)
        .args(["changes", "--count", "300", "--seed", "5"])
        .output()
        .expect("datagen changes");
    assert!(
        out.status.success(),
        "datagen changes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cdc_available_now();
    assert_replicas_equal_sources(&pg, &my).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_topic_of_a_table_without_replica_is_named_and_left_alone() {
    let table = support::unique("cdc_unknown").replace('-', "_");
    let topic = format!(
        "{}.{}.{table}",
        support::var("CDC_TOPIC_PREFIX"),
        support::postgres().schema
    );
    support::create_topic(&topic, 1).await;
    support::produce(&topic, &[r#"{"op":"c","after":{"id":1}}"#.to_string()]).await;
    let (out, _, stderr) = support::run(&["cdc", "--available-now"]);
    support::delete_topic(&topic).await;
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "change topic of table {table}, which has no MySQL replica"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_apply_replays_a_reloaded_table_without_waiting_for_its_next_change() {
    let (pg, my) = (support::pg_pool().await, support::mysql_pool().await);
    cdc_available_now();
    let job = Job::spawn("cdc");
    tokio::time::sleep(Duration::from_secs(10)).await; // its queries are running
    support::run_ok(&["replicate", "--table", "products"]);
    // The reload set the table's position back to 0; no change of products follows,
    // yet the running job must replay the topic over the reloaded copy, to its end
    // (one micro-batch or several: the topic holds every change ever captured).
    let topic = format!(
        "{}.{}.products",
        support::var("CDC_TOPIC_PREFIX"),
        support::postgres().schema
    );
    let ends = jobs::stream::position::kafka_watermarks(&support::kafka(), &topic)
        .await
        .expect("the products topic's offsets");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let held: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT kafka_partition, next_offset FROM cdc_sink_offsets \
             WHERE target_table = 'products' AND topic = ?",
        )
        .bind(&topic)
        .fetch_all(&my)
        .await
        .expect("offsets");
        let replayed = ends.iter().all(|(p, (_, high))| {
            held.iter()
                .any(|(hp, next)| hp == p && *next >= *high && *next > 0)
        });
        if replayed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running apply did not replay the reloaded table"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    job.kill9();
    assert_replicas_equal_sources(&pg, &my).await;
}
