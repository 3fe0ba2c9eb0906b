//! Encoding of the data set in PostgreSQL's COPY text format, table by table.

use std::fmt::Write;

use chrono::NaiveDateTime;
use common::schema::{self, Table};

use super::generate::DataSet;

/// Rows per chunk sent to the server (and per progress-bar step).
const CHUNK_ROWS: usize = 5000;

/// One table's rows, ready for `COPY <table> (<columns>) FROM STDIN`.
#[derive(Debug)]
pub struct TableCopy {
    pub table: &'static str,
    pub primary_key: &'static str,
    /// The table's columns as `common::schema` lists them, the order of each row.
    pub columns: String,
    pub rows: usize,
    /// Chunks of up to [`CHUNK_ROWS`] rows: (rows in chunk, bytes).
    pub chunks: Vec<(usize, String)>,
}

impl TableCopy {
    pub fn statement(&self) -> String {
        format!("COPY {} ({}) FROM STDIN", self.table, self.columns)
    }
}

/// Escapes a text value for COPY text format (backslash, tab, newline, CR).
fn push_text(buf: &mut String, s: &str) {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        buf.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

fn ts(t: NaiveDateTime) -> impl std::fmt::Display {
    t.format("%Y-%m-%d %H:%M:%S")
}

/// Cents as an exact decimal: 1234 -> "12.34".
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

fn encode<T>(
    table: &'static Table,
    items: &[T],
    mut row: impl FnMut(&mut String, &T) -> std::fmt::Result,
) -> TableCopy {
    let chunks = items
        .chunks(CHUNK_ROWS)
        .map(|chunk| {
            let mut buf = String::with_capacity(chunk.len() * 96);
            for item in chunk {
                // Writing to a String cannot fail.
                let _ = row(&mut buf, item);
                buf.push('\n');
            }
            (chunk.len(), buf)
        })
        .collect();
    TableCopy {
        table: table.name,
        primary_key: table.primary_key,
        columns: table
            .columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", "),
        rows: items.len(),
        chunks,
    }
}

fn table(name: &str) -> &'static Table {
    schema::table(name).unwrap_or_else(|| panic!("{name} is not a table of common::schema"))
}

/// The five tables in foreign-key order (parents first).
pub fn encode_all(d: &DataSet) -> Vec<TableCopy> {
    vec![
        encode(table("users"), &d.users, |b, u| {
            write!(b, "{}\t", u.id)?;
            push_text(b, &u.first_name);
            b.push('\t');
            push_text(b, &u.last_name);
            b.push('\t');
            push_text(b, &u.email);
            b.push('\t');
            push_text(b, &u.phone);
            write!(b, "\t{}\t{}", ts(u.registration_date), u.loyalty_status)
        }),
        encode(table("product_categories"), &d.categories, |b, c| {
            write!(b, "{}\t", c.id)?;
            push_text(b, &c.name);
            match c.parent_id {
                Some(p) => write!(b, "\t{p}"),
                None => write!(b, "\t\\N"),
            }
        }),
        encode(table("products"), &d.products, |b, p| {
            write!(b, "{}\t", p.id)?;
            push_text(b, &p.name);
            b.push('\t');
            push_text(b, &p.description);
            write!(
                b,
                "\t{}\t{}\t{}\t{}",
                p.category_id,
                money(p.price_cents),
                p.stock_quantity,
                ts(p.creation_date)
            )
        }),
        encode(table("orders"), &d.orders, |b, o| {
            write!(
                b,
                "{}\t{}\t{}\t{}\t{}\t{}",
                o.id,
                o.user_id,
                ts(o.order_date),
                money(o.total_cents),
                o.status,
                ts(o.delivery_date)
            )
        }),
        encode(table("order_details"), &d.order_details, |b, l| {
            write!(
                b,
                "{}\t{}\t{}\t{}\t{}\t{}",
                l.id,
                l.order_id,
                l.product_id,
                l.quantity,
                money(l.price_per_unit_cents),
                money(l.total_price_cents)
            )
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(-150), "-1.50");
    }

    #[test]
    fn text_is_escaped() {
        let mut b = String::new();
        push_text(&mut b, "a\tb\\c\nd");
        assert_eq!(b, "a\\tb\\\\c\\nd");
    }

    #[test]
    fn tables_come_parents_first_with_all_rows() {
        let v = super::super::Volumes::default();
        let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let d = super::super::generate(&v, 1, day).unwrap();
        let t = encode_all(&d);
        let names: Vec<_> = t.iter().map(|t| t.table).collect();
        assert_eq!(names, common::schema::TABLES.map(|t| t.name));
        for (t, s) in t.iter().zip(common::schema::TABLES) {
            assert_eq!(t.primary_key, s.primary_key);
        }
        for t in &t {
            let lines: usize = t.chunks.iter().map(|(_, s)| s.lines().count()).sum();
            assert_eq!(lines, t.rows);
        }
    }
}
