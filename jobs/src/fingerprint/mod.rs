//! Content fingerprints computed inside each database, so a replica can be compared
//! with its source without moving the data again. Each row is rendered to the same
//! canonical text in PostgreSQL and MySQL, hashed with MD5, and the first 60 bits of
//! the hashes are summed (order-independent, exact integer arithmetic).
//!
//! The canonical text is unambiguous: every value is written as its length in
//! characters, `:`, then the value, and NULL as `~` (no length can start with it), so
//! no separator or backslash inside a value can make two different rows render alike.

use anyhow::{Context, Result};
use common::schema::{Kind, Table};
use sqlx::{AssertSqlSafe, MySqlPool, PgConnection};

/// Rows and checksum of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: i64,
    pub checksum: String,
}

const NULL_MARK: &str = "'~'";

/// Text of a value in PostgreSQL; timestamps with all six fractional digits.
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

fn pg_row(table: &Table) -> String {
    let parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let v = pg_value(c.name, c.kind);
            let field = format!("char_length({v})::text || ':' || {v}");
            if c.nullable {
                format!("COALESCE({field}, {NULL_MARK})")
            } else {
                field
            }
        })
        .collect();
    parts.join(" || ")
}

fn mysql_row(table: &Table) -> String {
    let parts: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let v = mysql_value(c.name, c.kind);
            let field = format!("CONCAT(CHAR_LENGTH({v}), ':', {v})");
            if c.nullable {
                format!("COALESCE({field}, {NULL_MARK})")
            } else {
                field
            }
        })
        .collect();
    format!("CONCAT({})", parts.join(", "))
}

/// `SELECT count, checksum` over the whole table in PostgreSQL.
pub fn postgres_sql(table: &Table) -> String {
    format!(
        "SELECT count(*)::bigint, COALESCE(sum(('x' || substr(md5({}), 1, 15))::bit(60)::bigint), 0)::text \
         FROM {}",
        pg_row(table),
        table.name
    )
}

/// The MySQL checksum of `relation`, which has the columns of `table` (e.g. its
/// staging copy).
pub fn mysql_sql(table: &Table, relation: &str) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) \
         FROM `{relation}`",
        mysql_row(table)
    )
}

/// The fingerprint of a PostgreSQL table as `conn` sees it (e.g. inside a snapshot).
pub async fn postgres_fingerprint(conn: &mut PgConnection, table: &Table) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) = sqlx::query_as(AssertSqlSafe(postgres_sql(table)))
        .fetch_one(conn)
        .await
        .with_context(|| format!("cannot checksum PostgreSQL table {}", table.name))?;
    Ok(Fingerprint { rows, checksum })
}

pub async fn mysql_fingerprint(
    pool: &MySqlPool,
    table: &Table,
    relation: &str,
) -> Result<Fingerprint> {
    let (rows, checksum): (i64, String) = sqlx::query_as(AssertSqlSafe(mysql_sql(table, relation)))
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
    fn both_sides_render_every_column_length_prefixed() {
        let t = schema::table("orders").expect("orders");
        let pg = postgres_sql(t);
        let my = mysql_sql(t, "orders__stg_x");
        for c in t.columns {
            assert!(
                pg.contains(&format!("char_length({}", pg_value(c.name, c.kind))),
                "{}",
                c.name
            );
            assert!(
                my.contains(&format!("CHAR_LENGTH({}", mysql_value(c.name, c.kind))),
                "{}",
                c.name
            );
        }
        assert!(pg.contains("COALESCE(char_length(to_char(delivery_date"));
        assert!(my.contains("COALESCE(CONCAT(CHAR_LENGTH(DATE_FORMAT(delivery_date"));
        assert!(my.ends_with("FROM `orders__stg_x`"));
        assert!(!pg.contains("CONCAT_WS") && !my.contains("CONCAT_WS"));
    }
}
