//! Content fingerprints computed inside each database, so a replica can be compared
//! with its source without moving the data again. Each row is rendered to the same
//! canonical text in PostgreSQL and MySQL, hashed with MD5, and the first 60 bits of
//! the hashes are summed (order-independent, exact integer arithmetic).
//!
//! The canonical text is unambiguous: every value is written as its length in
//! characters, `:`, then the value, and NULL as `~` (no length can start with it), so
//! no separator or backslash inside a value can make two different rows render alike.
//!
//! The same sums over slices of a primary-key range ([`postgres_slices`],
//! [`mysql_slices`]) tell where two tables differ without reading their rows out.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};
use common::schema::{Kind, Table};
use sqlx::{AssertSqlSafe, Executor, MySql, PgConnection};

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

/// The count and checksum columns over the rows a PostgreSQL query selects.
fn pg_aggregates(table: &Table) -> String {
    format!(
        "count(*)::bigint, COALESCE(sum(('x' || substr(md5({}), 1, 15))::bit(60)::bigint), 0)::text",
        pg_row(table)
    )
}

/// The same in MySQL: the first 15 hex digits (60 bits) of each MD5, summed exactly.
fn mysql_aggregates(table: &Table) -> String {
    format!(
        "CAST(COUNT(*) AS SIGNED), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR)",
        mysql_row(table)
    )
}

/// `SELECT count, checksum` over the whole table in PostgreSQL.
pub fn postgres_sql(table: &Table) -> String {
    format!("SELECT {} FROM {}", pg_aggregates(table), table.name)
}

/// The MySQL checksum of `relation`, which has the columns of `table` (e.g. its
/// staging copy).
pub fn mysql_sql(table: &Table, relation: &str) -> String {
    format!("SELECT {} FROM `{relation}`", mysql_aggregates(table))
}

/// `SELECT slice, count, checksum` in PostgreSQL over the keys `$1..=$2`, cut into
/// slices of `$3` keys from `$1` (slice `i` holds keys `$1 + i*$3 ..`). The key
/// condition is pushed into the query, so only the range's index entries are read.
pub fn postgres_slices_sql(table: &Table) -> String {
    let pk = table.primary_key;
    format!(
        "SELECT (({pk}::bigint - $1) / $3)::bigint AS slice, {} FROM {} \
         WHERE {pk} BETWEEN $1 AND $2 GROUP BY 1 ORDER BY 1",
        pg_aggregates(table),
        table.name
    )
}

/// The same in MySQL over `relation`; parameters: first key, slice width, first key,
/// last key.
pub fn mysql_slices_sql(table: &Table, relation: &str) -> String {
    let pk = table.primary_key;
    format!(
        "SELECT CAST((`{pk}` - ?) DIV ? AS SIGNED) AS slice, {} FROM `{relation}` \
         WHERE `{pk}` BETWEEN ? AND ? GROUP BY slice ORDER BY slice",
        mysql_aggregates(table)
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

/// The fingerprint of `relation` through a pool, or a connection of its own (e.g. one
/// reading a consistent snapshot).
pub async fn mysql_fingerprint<'c, E>(conn: E, table: &Table, relation: &str) -> Result<Fingerprint>
where
    E: Executor<'c, Database = MySql>,
{
    let (rows, checksum): (i64, String) = sqlx::query_as(AssertSqlSafe(mysql_sql(table, relation)))
        .fetch_one(conn)
        .await
        .with_context(|| format!("cannot checksum MySQL table {relation}"))?;
    Ok(Fingerprint { rows, checksum })
}

/// An inclusive range of primary-key values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    pub first: i64,
    pub last: i64,
}

impl KeyRange {
    /// How many key values it spans (at least one).
    pub fn keys(self) -> i64 {
        self.last - self.first + 1
    }

    /// The width of each of `parts` slices that together cover the range (the last
    /// may be shorter); at least one key.
    pub fn slice_width(self, parts: i64) -> i64 {
        let parts = parts.max(1);
        ((self.keys() + parts - 1) / parts).max(1)
    }

    /// Slice `index` of the range cut every `width` keys.
    pub fn slice(self, width: i64, index: i64) -> KeyRange {
        let first = self.first + index * width;
        KeyRange {
            first,
            last: (first + width - 1).min(self.last),
        }
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// Fingerprints of the slices of a key range that hold rows, by slice index.
pub type Slices = BTreeMap<i64, Fingerprint>;

/// The PostgreSQL fingerprints of `range` cut every `width` keys, as `conn` sees it.
pub async fn postgres_slices(
    conn: &mut PgConnection,
    table: &Table,
    range: KeyRange,
    width: i64,
) -> Result<Slices> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(AssertSqlSafe(postgres_slices_sql(table)))
        .bind(range.first)
        .bind(range.last)
        .bind(width)
        .fetch_all(conn)
        .await
        .with_context(|| {
            format!(
                "cannot checksum {} {range} of PostgreSQL table {}",
                table.primary_key, table.name
            )
        })?;
    Ok(into_slices(rows))
}

/// The MySQL fingerprints of `range` of `relation` cut every `width` keys.
pub async fn mysql_slices<'c, E>(
    conn: E,
    table: &Table,
    relation: &str,
    range: KeyRange,
    width: i64,
) -> Result<Slices>
where
    E: Executor<'c, Database = MySql>,
{
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as(AssertSqlSafe(mysql_slices_sql(table, relation)))
            .bind(range.first)
            .bind(width)
            .bind(range.first)
            .bind(range.last)
            .fetch_all(conn)
            .await
            .with_context(|| {
                format!(
                    "cannot checksum {} {range} of MySQL table {relation}",
                    table.primary_key
                )
            })?;
    Ok(into_slices(rows))
}

fn into_slices(rows: Vec<(i64, i64, String)>) -> Slices {
    rows.into_iter()
        .map(|(slice, rows, checksum)| (slice, Fingerprint { rows, checksum }))
        .collect()
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

    #[test]
    fn slices_sum_the_same_row_text_as_the_whole_table() {
        let t = schema::table("orders").expect("orders");
        assert!(postgres_slices_sql(t).contains(&pg_aggregates(t)));
        assert!(postgres_slices_sql(t).contains("WHERE order_id BETWEEN $1 AND $2"));
        assert!(mysql_slices_sql(t, "orders").contains(&mysql_aggregates(t)));
        assert!(mysql_slices_sql(t, "orders").contains("WHERE `order_id` BETWEEN ? AND ?"));
    }

    #[test]
    fn a_key_range_cuts_into_slices_that_cover_it_exactly() {
        let r = KeyRange {
            first: 10,
            last: 42,
        };
        assert_eq!(r.keys(), 33);
        let w = r.slice_width(16);
        assert_eq!(w, 3);
        let slices: Vec<KeyRange> = (0..=(r.keys() - 1) / w).map(|i| r.slice(w, i)).collect();
        assert_eq!(
            slices[0],
            KeyRange {
                first: 10,
                last: 12
            }
        );
        assert_eq!(slices.last().map(|s| s.last), Some(42));
        for pair in slices.windows(2) {
            assert_eq!(pair[0].last + 1, pair[1].first);
        }
        let one = KeyRange { first: 7, last: 7 };
        assert_eq!(one.slice_width(16), 1);
        assert_eq!(one.to_string(), "7");
        assert_eq!(r.to_string(), "10..42");
    }
}
