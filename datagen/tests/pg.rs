//! `datagen pg` against the PostgreSQL of the local stack. Destructive runs use scratch
//! schemas; the platform schema is only ever filled (never emptied) by these tests.

mod support;

use support::{Scratch, checksum, counts, error_lines, run};

const AS_OF: &str = "2025-06-01";
const SMALL: [&str; 10] = [
    "--users",
    "200",
    "--products",
    "50",
    "--orders",
    "300",
    "--order-details",
    "900",
    "--categories",
    "40",
];

async fn scalar(conn: &mut sqlx::PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn fills_exact_consistent_data_once() {
    let s = Scratch::new("fill").await;
    let (out, err) = run(&["pg", "--pg-schema", &s.schema, "--as-of", AS_OF]);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("loaded 60500 rows"), "{err}");
    let mut c = s.conn().await;
    assert_eq!(counts(&mut c).await, [5000, 5000, 500, 10000, 40000]);

    // Money adds up, to the cent.
    for (what, sql) in [
        (
            "line total != quantity * unit price",
            "SELECT count(*) FROM order_details WHERE total_price <> quantity * price_per_unit",
        ),
        (
            "unit price != product price",
            "SELECT count(*) FROM order_details d JOIN products p USING (product_id) \
             WHERE d.price_per_unit <> p.price",
        ),
        (
            "order total != sum of its lines",
            "SELECT count(*) FROM orders o LEFT JOIN \
               (SELECT order_id, sum(total_price) AS s FROM order_details GROUP BY order_id) d \
               USING (order_id) WHERE o.total_amount <> coalesce(d.s, 0)",
        ),
        (
            "orphan lines",
            "SELECT count(*) FROM order_details d WHERE NOT EXISTS \
               (SELECT 1 FROM orders o WHERE o.order_id = d.order_id) \
               OR NOT EXISTS (SELECT 1 FROM products p WHERE p.product_id = d.product_id)",
        ),
        (
            "orphan orders",
            "SELECT count(*) FROM orders o WHERE NOT EXISTS \
               (SELECT 1 FROM users u WHERE u.user_id = o.user_id)",
        ),
        (
            "orphan products / categories",
            "SELECT count(*) FROM products p WHERE NOT EXISTS \
               (SELECT 1 FROM product_categories c WHERE c.category_id = p.category_id)",
        ),
        (
            "quantity outside 1-10",
            "SELECT count(*) FROM order_details WHERE quantity NOT BETWEEN 1 AND 10",
        ),
        (
            "price outside 10-100",
            "SELECT count(*) FROM products WHERE price NOT BETWEEN 10 AND 100",
        ),
        (
            "delivery not after order, or order outside the last year",
            "SELECT count(*) FROM orders WHERE delivery_date <= order_date \
             OR order_date < DATE '2025-06-01' - INTERVAL '1 year' \
             OR order_date >= DATE '2025-06-01'",
        ),
        (
            "orders without lines",
            "SELECT count(*) FROM orders o WHERE NOT EXISTS \
               (SELECT 1 FROM order_details d WHERE d.order_id = o.order_id)",
        ),
    ] {
        assert_eq!(scalar(&mut c, sql).await, 0, "{what}");
    }
    // The foreign keys are back in place (they were dropped for the load).
    assert_eq!(
        scalar(
            &mut c,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' \
             AND connamespace = current_schema()::regnamespace"
        )
        .await,
        5
    );
    // Seed shape: 10 top categories, half of the random ones are children.
    assert_eq!(
        scalar(
            &mut c,
            "SELECT count(*) FROM product_categories WHERE category_id <= 10 \
             AND parent_category_id IS NULL"
        )
        .await,
        10
    );
    assert_eq!(
        scalar(
            &mut c,
            "SELECT count(*) FROM product_categories WHERE parent_category_id IS NOT NULL"
        )
        .await,
        (5000 - 10) / 2
    );
    assert_eq!(
        scalar(&mut c, "SELECT count(DISTINCT loyalty_status) FROM users").await,
        3
    );
    assert_eq!(
        scalar(&mut c, "SELECT count(DISTINCT status) FROM orders").await,
        2
    );

    // A second run adds nothing and says so.
    let before = checksum(&mut c).await;
    let (out, err) = run(&["pg", "--pg-schema", &s.schema]);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("already populated, nothing to do"), "{err}");
    assert_eq!(counts(&mut c).await, [5000, 5000, 500, 10000, 40000]);
    assert_eq!(checksum(&mut c).await, before);

    // The identity sequences were moved past the explicit ids.
    let id: i32 = sqlx::query_scalar(
        "INSERT INTO users (first_name, last_name, email, registration_date, loyalty_status) \
         VALUES ('A', 'B', 'a.b@example.com', now(), 'Gold') RETURNING user_id",
    )
    .fetch_one(&mut c)
    .await
    .expect("insert without an id");
    assert_eq!(id, 5001);
    drop(c);
    s.drop().await;
}

#[tokio::test]
async fn seed_is_deterministic_and_reset_regenerates() {
    let s = Scratch::new("seed").await;
    let args = |seed: &'static str, reset: bool| {
        let mut a = vec![
            "pg",
            "--pg-schema",
            &s.schema,
            "--as-of",
            AS_OF,
            "--seed",
            seed,
        ];
        a.extend(SMALL);
        if reset {
            a.push("--reset");
        }
        a
    };
    let mut c = s.conn().await;
    let (out, err) = run(&args("7", false));
    assert!(out.status.success(), "{err}");
    let first = checksum(&mut c).await;
    assert_eq!(counts(&mut c).await, [200, 40, 50, 300, 900]);

    let (out, err) = run(&args("7", true));
    assert!(out.status.success(), "{err}");
    assert!(err.contains("--reset"), "{err}");
    assert_eq!(checksum(&mut c).await, first, "same seed, same data");

    let (out, err) = run(&args("8", true));
    assert!(out.status.success(), "{err}");
    assert_ne!(checksum(&mut c).await, first, "another seed, other data");
    assert_eq!(counts(&mut c).await, [200, 40, 50, 300, 900]);
    drop(c);
    s.drop().await;
}

#[tokio::test]
async fn failed_run_leaves_nothing_behind() {
    let s = Scratch::new("fail").await;
    let mut c = s.conn().await;
    // A constraint the generated data breaks: the last table's COPY fails after the
    // other four were loaded in the same transaction.
    sqlx::query("ALTER TABLE order_details ADD CONSTRAINT datagen_test_small CHECK (quantity < 5)")
        .execute(&mut c)
        .await
        .unwrap();
    let mut a = vec!["pg", "--pg-schema", s.schema.as_str()];
    a.extend(SMALL);
    let (out, err) = run(&a);
    assert!(!out.status.success(), "{err}");
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("COPY into order_details"), "{err}");
    assert!(errors[0].contains("nothing was written"), "{err}");
    assert_eq!(counts(&mut c).await, [0; 5], "a failed run leaves nothing");

    // A failed --reset keeps the previous data.
    sqlx::query("ALTER TABLE order_details DROP CONSTRAINT datagen_test_small")
        .execute(&mut c)
        .await
        .unwrap();
    let (out, err) = run(&a);
    assert!(out.status.success(), "{err}");
    let before = checksum(&mut c).await;
    sqlx::query(
        "ALTER TABLE order_details ADD CONSTRAINT datagen_test_small CHECK (quantity < 5) NOT VALID",
    )
    .execute(&mut c)
    .await
    .unwrap();
    a.extend(["--reset", "--seed", "9"]);
    let (out, err) = run(&a);
    assert!(!out.status.success(), "{err}");
    assert_eq!(
        checksum(&mut c).await,
        before,
        "a failed --reset changes nothing"
    );
    drop(c);
    s.drop().await;
}

#[test]
fn errors_are_one_clear_line() {
    for (args, expect) in [
        (
            vec!["pg", "--pg-port", "1"],
            "cannot connect to PostgreSQL finals_user@localhost:1",
        ),
        (vec!["pg", "--pg-schema", "a-b"], "POSTGRES_SCHEMA"),
        (
            vec!["pg", "--pg-schema", "datagen_no_such_schema"],
            "missing in PostgreSQL",
        ),
        (vec!["pg", "--users", "0"], "orders need users"),
    ] {
        let (out, err) = run(&args);
        assert!(!out.status.success(), "{args:?}: {err}");
        let errors = error_lines(&err);
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert!(errors[0].contains(expect), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

/// Runs last (tests run in name order with --test-threads=1): leaves the platform
/// schema with the default data set, which the pipeline tests use. It never empties
/// the schema: if the data is there already, the run is a no-op.
#[tokio::test]
async fn zz_platform_schema_holds_the_default_data_set() {
    let (out, err) = run(&["pg"]);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("loaded 60500 rows") || err.contains("already populated"),
        "{err}"
    );
    common::load_dotenv();
    let schema = std::env::var("POSTGRES_SCHEMA").unwrap_or("postgres_finals_schema".into());
    let mut c = support::connect(&schema).await;
    let n = counts(&mut c).await;
    if err.contains("loaded 60500 rows") {
        assert!(n[0] >= 5000, "users {n:?}");
        assert_eq!(n[1..], [5000, 500, 10000, 40000]);
    } else {
        // Populated before: `make demo` and the CDC tests change it since (datagen
        // changes), so only that every table holds rows is certain.
        assert!(n.iter().all(|&rows| rows > 0), "{n:?}");
    }
}
