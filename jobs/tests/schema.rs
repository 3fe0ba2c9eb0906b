//! The DDL of `infra/db` (as the local stack's PostgreSQL and MySQL hold it) and the
//! Rust schema (`common::schema`, where tables, columns, lengths and allowed values are
//! written once) agree: same tables, columns in the same order, nullability, lengths,
//! keys, and the CHECKs allow exactly the listed values.

mod support;

use common::schema::{LOYALTY_STATUSES, ORDER_STATUSES, TABLES};

type ColumnRow = (String, String, Option<i64>);

#[tokio::test]
async fn postgres_tables_are_the_rust_schema() {
    let pg = support::pg_pool().await;
    for t in &TABLES {
        let cols: Vec<ColumnRow> = sqlx::query_as(
            "SELECT column_name::text, is_nullable::text, character_maximum_length::bigint \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(t.name)
        .fetch_all(&pg)
        .await
        .expect("columns");
        assert_columns("PostgreSQL", t, &cols);
        let (key,): (String,) = sqlx::query_as(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = $1::regclass AND i.indisprimary",
        )
        .bind(t.name)
        .fetch_one(&pg)
        .await
        .expect("primary key");
        assert_eq!(key, t.primary_key, "PostgreSQL {} primary key", t.name);
    }
    for (table, column, allowed) in [
        ("users", "loyalty_status", &LOYALTY_STATUSES[..]),
        ("orders", "status", &ORDER_STATUSES[..]),
    ] {
        let (def,): (String,) = sqlx::query_as(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::regclass AND contype = 'c' \
             AND pg_get_constraintdef(oid) LIKE '%' || $2 || '%ANY%'",
        )
        .bind(table)
        .bind(column)
        .fetch_one(&pg)
        .await
        .unwrap_or_else(|e| panic!("no CHECK listing the values of {table}.{column}: {e}"));
        let values: Vec<&str> = def.split('\'').skip(1).step_by(2).collect();
        assert_eq!(values, allowed, "{table}.{column}: {def}");
    }
}

#[tokio::test]
async fn mysql_tables_are_the_rust_schema() {
    let my = support::mysql_pool().await;
    for t in &TABLES {
        let cols: Vec<ColumnRow> = sqlx::query_as(
            "SELECT CAST(COLUMN_NAME AS CHAR), CAST(IS_NULLABLE AS CHAR), \
             CAST(IF(DATA_TYPE = 'varchar', CHARACTER_MAXIMUM_LENGTH, NULL) AS SIGNED) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(t.name)
        .fetch_all(&my)
        .await
        .expect("columns");
        assert_columns("MySQL", t, &cols);
        let (key,): (String,) = sqlx::query_as(
            "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'",
        )
        .bind(t.name)
        .fetch_one(&my)
        .await
        .expect("primary key");
        assert_eq!(key, t.primary_key, "MySQL {} primary key", t.name);
    }
}

fn assert_columns(db: &str, t: &common::schema::Table, got: &[ColumnRow]) {
    let want: Vec<ColumnRow> = t
        .columns
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                if c.nullable { "YES" } else { "NO" }.to_string(),
                c.max_len.map(|n| n as i64),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "{db} table {} differs from common::schema",
        t.name
    );
}
