//! The replication fingerprint on the real databases: rows that differ must never
//! fingerprint alike (the old `CONCAT_WS('|')` text made `('a|b','c')` equal
//! `('a','b|c')`, and a literal `\N` equal NULL), and equal rows always must.

mod support;

use common::schema;
use jobs::fingerprint::{mysql_fingerprint, postgres_fingerprint};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

type User<'a> = (i32, &'a str, &'a str, Option<&'a str>, &'a str);

/// The fingerprints of `pg_rows` in PostgreSQL and `my_rows` in MySQL, each in a
/// scratch copy of `users` (a temporary table shadowing it in PostgreSQL).
async fn fingerprints(pg_rows: &[User<'_>], my_rows: &[User<'_>]) -> (String, String) {
    let users = schema::table("users").expect("users");
    let mut pg =
        PgConnection::connect_with(&support::postgres().connect_options().expect("settings"))
            .await
            .expect("connect");
    sqlx::query("CREATE TEMP TABLE users (LIKE users INCLUDING ALL)")
        .execute(&mut pg)
        .await
        .expect("temp table");
    for (id, first, last, phone, date) in pg_rows {
        sqlx::query(
            "INSERT INTO users VALUES ($1, $2, $3, $4 || '@x.io', $5, $6::timestamp, 'Gold')",
        )
        .bind(id)
        .bind(first)
        .bind(last)
        .bind(id.to_string())
        .bind(phone)
        .bind(date)
        .execute(&mut pg)
        .await
        .expect("insert");
    }
    let my = support::mysql_pool().await;
    let scratch = support::unique("users__fp");
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE `{scratch}` LIKE users"
    )))
    .execute(&my)
    .await
    .expect("scratch table");
    for (id, first, last, phone, date) in my_rows {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO `{scratch}` VALUES (?, ?, ?, CONCAT(?, '@x.io'), ?, ?, 'Gold')"
        )))
        .bind(id)
        .bind(first)
        .bind(last)
        .bind(id.to_string())
        .bind(phone)
        .bind(date)
        .execute(&my)
        .await
        .expect("insert");
    }
    let source = postgres_fingerprint(&mut pg, users).await.expect("pg");
    let copy = mysql_fingerprint(&my, users, &scratch).await;
    sqlx::query(AssertSqlSafe(format!("DROP TABLE `{scratch}`")))
        .execute(&my)
        .await
        .expect("drop");
    let copy = copy.expect("mysql");
    assert_eq!(source.rows, copy.rows);
    (source.checksum, copy.checksum)
}

const DATE: &str = "2025-12-31 23:59:59.123";

#[tokio::test]
async fn a_separator_moved_between_columns_changes_the_fingerprint() {
    let (pg, my) = fingerprints(
        &[(1, "a|b", "c", Some("+1"), DATE)],
        &[(1, "a", "b|c", Some("+1"), DATE)],
    )
    .await;
    assert_ne!(pg, my);
}

#[tokio::test]
async fn a_literal_backslash_n_is_not_null() {
    let (pg, my) = fingerprints(
        &[(1, "a", "b", None, DATE)],
        &[(1, "a", "b", Some("\\N"), DATE)],
    )
    .await;
    assert_ne!(pg, my);
}

#[tokio::test]
async fn a_lost_fraction_of_a_second_changes_the_fingerprint() {
    let (pg, my) = fingerprints(
        &[(1, "a", "b", None, DATE)],
        &[(1, "a", "b", None, "2025-12-31 23:59:59")],
    )
    .await;
    assert_ne!(pg, my);
}

#[tokio::test]
async fn equal_rows_fingerprint_alike_whatever_they_hold() {
    let rows: [User; 5] = [
        (1, "😀🦀 𝔘𝔫𝔦", "José", Some("\\N"), DATE),
        (2, "a|b", "c:3", None, "2024-02-29 00:00:00.000001"),
        (
            3,
            "back\\slash",
            "tab\tnew\nline",
            Some("'"),
            "1999-12-31 23:59:59",
        ),
        (4, "~", "1:x", Some("~"), "2024-01-01 00:00:00"),
        (5, "", "Ünïcödé", Some(""), "2024-01-01 00:00:00"),
    ];
    let (pg, my) = fingerprints(&rows, &rows).await;
    assert_eq!(pg, my);
}
