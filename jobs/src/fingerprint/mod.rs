//! Content checksums computed inside each database, so a replica can be compared
//! with its source without moving the data again. Each row is rendered to the same
//! canonical text in PostgreSQL and MySQL, hashed with MD5, and the first 60 bits
//! of the hashes are summed (order-independent, exact integer arithmetic).

use anyhow::{Context, Result};
use common::schema::{Kind, Table};
use sqlx::{AssertSqlSafe, MySqlPool, PgPool};

/// Rows and checksum of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: i64,
    pub checksum: String,
}

const NULL_MARK: &str = "\\N";

fn pg_value(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Timestamp => format!("to_char({name}, 'YYYY-MM-DD HH24:MI:SS.US')"),
        _ => format!("{name}::text"),
    }
}

fn mysql_value(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Timestamp => format!("DATE_FORMAT({name}, '%Y-%m-%d %H:%i:%s.%f')"),
        _ => format!("CAST({name} AS CHAR)"),
    }
}

fn row_text(table: &Table, render: fn(&str, Kind) -> String, null_literal: &str) -> String {
    let parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let v = render(c.name, c.kind);
            if c.nullable {
                format!("COALESCE({v}, {null_literal})")
            } else {
                v
            }
        })
        .collect();
    format!("CONCAT_WS('|', {})", parts.join(", "))
}

/// `SELECT count, checksum` over the rows with key <= `max_key` in PostgreSQL.
pub fn postgres_sql(table: &Table, max_key: i64) -> String {
    let row = row_text(table, pg_value, &format!("'{NULL_MARK}'"));
    format!(
        "SELECT count(*)::bigint, COALESCE(sum(('x' || substr(md5({row}), 1, 15))::bit(60)::bigint), 0)::text \
         FROM {} WHERE {} <= {max_key}",
        table.name, table.primary_key
    )
}

/// The same in MySQL (MariaDB). `\\N` because MySQL string literals treat `\` as escape.
pub fn mysql_sql(table: &Table) -> String {
    mysql_sql_for(table, table.name)
}

/// The MySQL checksum of `relation`, which has the columns of `table` (e.g. its staging copy).
pub fn mysql_sql_for(table: &Table, relation: &str) -> String {
    let row = row_text(table, mysql_value, "'\\\\N'");
    format!(
        "SELECT CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) \
         FROM `{relation}`"
    )
}

pub async fn postgres_fingerprint(
    pool: &PgPool,
    table: &Table,
    max_key: i64,
) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) =
        sqlx::query_as(AssertSqlSafe(postgres_sql(table, max_key)))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot checksum PostgreSQL table {}", table.name))?;
    Ok(Fingerprint { rows, checksum })
}

pub async fn mysql_fingerprint(
    pool: &MySqlPool,
    table: &Table,
    relation: &str,
) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) =
        sqlx::query_as(AssertSqlSafe(mysql_sql_for(table, relation)))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot checksum MySQL table {relation}"))?;
    Ok(Fingerprint { rows, checksum })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::schema;

    #[test]
    fn both_sides_render_every_column() {
        let t = schema::table("orders").expect("orders");
        let pg = postgres_sql(t, 10);
        let my = mysql_sql(t);
        for c in t.columns {
            assert!(pg.contains(c.name), "{} missing in {pg}", c.name);
            assert!(my.contains(c.name), "{} missing in {my}", c.name);
        }
        assert!(pg.contains("COALESCE(to_char(delivery_date"));
        assert!(my.contains("COALESCE(DATE_FORMAT(delivery_date"));
        assert!(pg.ends_with("WHERE order_id <= 10"));
    }
}
