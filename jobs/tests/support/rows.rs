//! Whole tables read from both databases as typed values, to compare a replica with
//! its source row by row — independently of the job's own fingerprint code.

use chrono::NaiveDateTime;
use common::schema::{Kind, Table};
use rust_decimal::Decimal;
use sqlx::{AssertSqlSafe, MySqlPool, PgPool, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Decimal(Decimal),
    Timestamp(NaiveDateTime),
}

fn select(table: &Table, quote: char) -> String {
    let cols: Vec<String> = table.columns.iter().map(|c| c.name.to_string()).collect();
    format!(
        "SELECT {} FROM {quote}{}{quote} ORDER BY {}",
        cols.join(", "),
        table.name,
        table.primary_key
    )
}

/// Every row of `table` in PostgreSQL, ordered by its key.
pub async fn postgres(pool: &PgPool, table: &Table) -> Vec<Vec<Value>> {
    let rows = sqlx::query(AssertSqlSafe(select(table, ' ')))
        .fetch_all(pool)
        .await
        .expect("read PostgreSQL table");
    rows.iter()
        .map(|r| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| match c.kind {
                    Kind::Int => r
                        .try_get::<Option<i32>, _>(i)
                        .expect("int")
                        .map_or(Value::Null, |v| Value::Int(v.into())),
                    Kind::Text => r
                        .try_get::<Option<String>, _>(i)
                        .expect("text")
                        .map_or(Value::Null, Value::Text),
                    Kind::Decimal => r
                        .try_get::<Option<Decimal>, _>(i)
                        .expect("decimal")
                        .map_or(Value::Null, Value::Decimal),
                    Kind::Timestamp => r
                        .try_get::<Option<NaiveDateTime>, _>(i)
                        .expect("timestamp")
                        .map_or(Value::Null, Value::Timestamp),
                })
                .collect()
        })
        .collect()
}

/// Every row of `table` in MySQL, ordered by its key.
pub async fn mysql(pool: &MySqlPool, table: &Table) -> Vec<Vec<Value>> {
    let rows = sqlx::query(AssertSqlSafe(select(table, '`')))
        .fetch_all(pool)
        .await
        .expect("read MySQL table");
    rows.iter()
        .map(|r| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| match c.kind {
                    Kind::Int => r
                        .try_get::<Option<i32>, _>(i)
                        .expect("int")
                        .map_or(Value::Null, |v| Value::Int(v.into())),
                    Kind::Text => r
                        .try_get::<Option<String>, _>(i)
                        .expect("text")
                        .map_or(Value::Null, Value::Text),
                    Kind::Decimal => r
                        .try_get::<Option<Decimal>, _>(i)
                        .expect("decimal")
                        .map_or(Value::Null, Value::Decimal),
                    Kind::Timestamp => r
                        .try_get::<Option<NaiveDateTime>, _>(i)
                        .expect("timestamp")
                        .map_or(Value::Null, Value::Timestamp),
                })
                .collect()
        })
        .collect()
}

/// Asserts that the MySQL replica of `table` holds exactly the PostgreSQL rows,
/// naming the first row that differs.
pub async fn assert_replica_equals_source(pg: &PgPool, my: &MySqlPool, table: &Table) {
    let source = postgres(pg, table).await;
    let replica = mysql(my, table).await;
    assert!(!source.is_empty(), "{} is empty in PostgreSQL", table.name);
    if let Some(i) = (0..source.len().min(replica.len())).find(|&i| source[i] != replica[i]) {
        panic!(
            "{}: row {i} differs\n PostgreSQL: {:?}\n MySQL:      {:?}",
            table.name, source[i], replica[i]
        );
    }
    assert_eq!(
        source.len(),
        replica.len(),
        "{}: PostgreSQL has {} rows, MySQL {}",
        table.name,
        source.len(),
        replica.len()
    );
}
