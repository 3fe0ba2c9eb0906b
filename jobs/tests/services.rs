//! Every service of the local stack, used for real: queries as the platform user,
//! a Kafka round trip, and Spark Connect reading PostgreSQL and writing MySQL over JDBC.

mod support;

use common::SparkSettings;
use jobs::check::{self, Service};
use jobs::spark::jdbc::{self, JdbcTarget};
use sqlx::AssertSqlSafe;

fn spark_remote() -> String {
    common::load_dotenv();
    support::var("SPARK_REMOTE")
}

#[tokio::test]
async fn postgres_answers_as_the_platform_user() {
    let pool = support::pg_pool().await;
    let (user, schema): (String, String) =
        sqlx::query_as("SELECT current_user::text, current_schema()::text")
            .fetch_one(&pool)
            .await
            .expect("query");
    assert_eq!(user, support::var("POSTGRES_USER"));
    assert_eq!(schema, support::var("POSTGRES_SCHEMA"));
}

#[tokio::test]
async fn mysql_answers_as_the_platform_user() {
    let pool = support::mysql_pool().await;
    let (user, db): (String, String) = sqlx::query_as("SELECT CURRENT_USER(), DATABASE()")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert!(
        user.starts_with(&format!("{}@", support::var("MYSQL_USER"))),
        "{user}"
    );
    assert_eq!(db, support::var("MYSQL_DB"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_probes_every_service() {
    let (pg, my, kafka) = (support::postgres(), support::mysql(), support::kafka());
    let spark = SparkSettings {
        remote: spark_remote(),
    };
    let settings = jobs::Settings {
        postgres: pg,
        postgres_reads: support::postgres_reads(),
        mysql: my,
        kafka,
        spark,
    };
    for s in Service::ALL {
        let what = check::probe(&settings, s).await.expect("service usable");
        assert!(!what.is_empty());
    }
}

#[tokio::test]
async fn check_fails_clearly_when_a_service_is_down() {
    // Nothing listens on port 1: the check must name the service and fail.
    let (out, _, stderr) = support::run(&["--pg-port", "1", "check", "--service", "postgres"]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("service=postgres is not usable"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn spark_reads_postgres_and_writes_mysql_over_jdbc() {
    let spark = jobs::spark::connect(
        &SparkSettings {
            remote: spark_remote(),
        },
        "test-jdbc",
    )
    .await
    .expect("connect");
    let pg_pool = support::pg_pool().await;
    let my_pool = support::mysql_pool().await;

    // Read: Spark's count of a PostgreSQL table equals PostgreSQL's own.
    let (expected,): (i64,) = sqlx::query_as("SELECT count(*) FROM product_categories")
        .fetch_one(&pg_pool)
        .await
        .expect("count");
    let source = JdbcTarget::postgres(&support::postgres()).expect("settings");
    let df = jdbc::read(&spark, &source, "product_categories", None, 1000, None);
    let count = jobs::spark::blocking(move || df.count()).await;
    assert_eq!(count.expect("spark count"), expected);

    // Write: rows made by Spark land in a MySQL table.
    let table = support::unique("jdbc_write_test");
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, label VARCHAR(20) NOT NULL)"
    )))
    .execute(&my_pool)
    .await
    .expect("create");
    let rows = spark
        .sql("SELECT id, concat('row-', id) AS label FROM range(0, 250)")
        .expect("plan");
    let sink = JdbcTarget::mysql(&support::mysql()).expect("settings");
    let written = jdbc::append(rows, &sink, &table, 100).await;
    let (count, max_label): (i64, String) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT CAST(COUNT(*) AS SIGNED), MAX(label) FROM `{table}`"
    )))
    .fetch_one(&my_pool)
    .await
    .expect("read back");
    sqlx::query(AssertSqlSafe(format!("DROP TABLE `{table}`")))
        .execute(&my_pool)
        .await
        .expect("drop");
    written.expect("Spark write");
    assert_eq!(count, 250);
    assert_eq!(max_label, "row-99");
}
