//! `jobs list`: the platform's tables, marts and allowed values, as `common::schema`
//! defines them. The DAGs' and the deploy tests' lists are checked against
//! `jobs list --json`, so the facts are written once, in Rust.

use anyhow::Result;
use common::schema::{self, MARTS, TABLES};
use serde_json::json;

use crate::{Settings, out};

/// Print the replicated tables (with their columns), the marts and the allowed values.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// As one JSON document (for the DAGs' tests and other tools)
    #[arg(long)]
    json: bool,
}

pub async fn run(_settings: &Settings, args: Args) -> Result<()> {
    if args.json {
        out!("{}", document());
    } else {
        for t in &TABLES {
            let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            out!("table {:<20} {}", t.name, cols.join(", "));
        }
        for m in MARTS {
            out!("mart  {m}");
        }
    }
    Ok(())
}

/// The facts as JSON: `tables` (name, primary key, columns with nullability and
/// length), `marts`, `loyalty_statuses`, `order_statuses`.
pub fn document() -> serde_json::Value {
    let tables: Vec<_> = TABLES
        .iter()
        .map(|t| {
            let columns: Vec<_> = t
                .columns
                .iter()
                .map(|c| json!({"name": c.name, "nullable": c.nullable, "max_len": c.max_len}))
                .collect();
            json!({"name": t.name, "primary_key": t.primary_key, "columns": columns})
        })
        .collect();
    json!({
        "tables": tables,
        "marts": MARTS,
        "loyalty_statuses": schema::LOYALTY_STATUSES,
        "order_statuses": schema::ORDER_STATUSES,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_every_table_and_mart() {
        let d = super::document();
        assert_eq!(d["tables"].as_array().map(Vec::len), Some(5));
        assert_eq!(d["tables"][0]["name"], "users");
        assert_eq!(d["tables"][0]["columns"][3]["max_len"], 100);
        assert_eq!(d["marts"].as_array().map(Vec::len), Some(3));
        assert_eq!(d["loyalty_statuses"][0], "Gold");
    }
}
