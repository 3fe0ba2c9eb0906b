//! The data vault's model, written once: which hubs and links the source tables feed.
//! Everything else (the satellites, the DDL, the current-state views and the
//! point-in-time functions, what each change event becomes) is derived from it and from
//! the source columns PostgreSQL reports.

use std::fmt::Write as _;

/// A business entity: its hub table is `hub_<name>`, keyed on a hash of `key`.
#[derive(Debug, Clone, Copy)]
pub struct Hub {
    pub name: &'static str,
    /// The source table whose rows are the entity (its own satellite's source).
    pub table: &'static str,
    /// The business key column (named the same in the hub).
    pub key: &'static str,
}

/// One hub a link points to, from a column of the link's source table.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub hub: &'static str,
    pub column: &'static str,
    /// The link's column holding that hub's hash key.
    pub as_column: &'static str,
}

/// A relationship: `link_<name>`, fed by the rows of `table`.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub name: &'static str,
    pub table: &'static str,
    pub roles: &'static [Role],
    /// A key of its own (an order line's id) that tells apart links between the same hubs.
    pub dependent: Option<&'static str>,
    /// The role whose hub drives the relationship (an order has one user at a time): its
    /// effectivity satellite `sat_<name>_eff` records which link is current. None: the
    /// link is the entity of its table and carries the table's satellite.
    pub driving: Option<usize>,
}

pub const HUBS: [Hub; 4] = [
    Hub {
        name: "user",
        table: "users",
        key: "user_id",
    },
    Hub {
        name: "category",
        table: "product_categories",
        key: "category_id",
    },
    Hub {
        name: "product",
        table: "products",
        key: "product_id",
    },
    Hub {
        name: "order",
        table: "orders",
        key: "order_id",
    },
];

pub const LINKS: [Link; 4] = [
    Link {
        name: "order_user",
        table: "orders",
        roles: &[
            Role {
                hub: "order",
                column: "order_id",
                as_column: "order_hk",
            },
            Role {
                hub: "user",
                column: "user_id",
                as_column: "user_hk",
            },
        ],
        dependent: None,
        driving: Some(0),
    },
    Link {
        name: "product_category",
        table: "products",
        roles: &[
            Role {
                hub: "product",
                column: "product_id",
                as_column: "product_hk",
            },
            Role {
                hub: "category",
                column: "category_id",
                as_column: "category_hk",
            },
        ],
        dependent: None,
        driving: Some(0),
    },
    Link {
        name: "category_parent",
        table: "product_categories",
        roles: &[
            Role {
                hub: "category",
                column: "category_id",
                as_column: "category_hk",
            },
            Role {
                hub: "category",
                column: "parent_category_id",
                as_column: "parent_category_hk",
            },
        ],
        dependent: None,
        driving: Some(0),
    },
    Link {
        name: "order_line",
        table: "order_details",
        roles: &[
            Role {
                hub: "order",
                column: "order_id",
                as_column: "order_hk",
            },
            Role {
                hub: "product",
                column: "product_id",
                as_column: "product_hk",
            },
        ],
        dependent: Some("order_detail_id"),
        driving: None,
    },
];

/// The bookkeeping of the sink's vault write (exactly-once progress, commits, quarantine).
pub const BOOKKEEPING: &str = "
CREATE TABLE IF NOT EXISTS vault_sink_offsets (
    sink_id         TEXT        NOT NULL,
    topic           TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    next_offset     BIGINT      NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (sink_id, topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS vault_sink_commits (
    commit_id      BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink_id        TEXT        NOT NULL,
    epoch          BIGINT      NOT NULL,
    events         BIGINT      NOT NULL,
    hub_rows       BIGINT      NOT NULL,
    link_rows      BIGINT      NOT NULL,
    satellite_rows BIGINT      NOT NULL,
    quarantined    BIGINT      NOT NULL,
    skipped        BIGINT      NOT NULL,
    committed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS vault_quarantine (
    topic           TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    reason          TEXT        NOT NULL,
    raw_bytes       BYTEA,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
";

/// A column of a source table, as PostgreSQL's catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceColumn {
    pub name: String,
    /// `format_type`: the type as DDL spells it (`numeric(10,2)`, `character varying(50)`).
    pub sql_type: String,
    /// information_schema's data_type (`integer`, `numeric`, ...).
    pub data_type: String,
    pub nullable: bool,
    pub max_chars: Option<i32>,
    pub precision: Option<i32>,
    pub scale: Option<i32>,
}

/// Who a satellite describes.
#[derive(Debug, Clone, Copy)]
pub enum Parent {
    Hub(&'static Hub),
    Link(&'static Link),
}

/// A satellite: descriptive attributes of a hub or link, or (effectivity) which link of
/// a driving hub is current.
#[derive(Debug, Clone)]
pub struct Satellite {
    pub name: String,
    pub table: &'static str,
    pub parent: Parent,
    /// The attributes (source columns), or empty for an effectivity satellite.
    pub attributes: Vec<SourceColumn>,
    /// For an effectivity satellite: its link.
    pub effectivity_of: Option<&'static Link>,
}

/// Columns every satellite starts with (the sink's vault write relies on these names).
pub const SATELLITE_COLUMNS: &str = "hk CHAR(32) NOT NULL, seq BIGINT NOT NULL, \
     load_ts TIMESTAMPTZ NOT NULL, applied_ts TIMESTAMPTZ NOT NULL, record_source TEXT NOT NULL, \
     hashdiff CHAR(32) NOT NULL, is_deleted BOOLEAN NOT NULL";

pub fn hub(name: &str) -> &'static Hub {
    HUBS.iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("no hub {name} in the model"))
}

pub fn hub_of(table: &str) -> Option<&'static Hub> {
    HUBS.iter().find(|h| h.table == table)
}

pub fn links_of(table: &str) -> impl Iterator<Item = &'static Link> + '_ {
    LINKS.iter().filter(move |l| l.table == table)
}

/// The tables the vault is fed from, in the source schema's order.
pub fn source_tables() -> Vec<&'static str> {
    common::schema::TABLES
        .iter()
        .map(|t| t.name)
        .filter(|t| hub_of(t).is_some() || links_of(t).next().is_some())
        .collect()
}

/// The entity a table's rows are: its hub, else the link that carries its satellite.
pub fn owner(table: &str) -> Option<Parent> {
    hub_of(table).map(Parent::Hub).or_else(|| {
        links_of(table)
            .find(|l| l.driving.is_none())
            .map(Parent::Link)
    })
}

impl Parent {
    pub fn table(&self) -> String {
        match self {
            Parent::Hub(h) => format!("hub_{}", h.name),
            Parent::Link(l) => format!("link_{}", l.name),
        }
    }
}

/// Columns of `table` that identify rather than describe (keys, relationships).
fn structural(table: &str) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = hub_of(table).map(|h| h.key).into_iter().collect();
    for l in links_of(table) {
        cols.extend(l.roles.iter().map(|r| r.column));
        cols.extend(l.dependent);
    }
    cols
}

/// The satellites fed by `table`: the owner's attributes, then one effectivity
/// satellite per driven link.
pub fn satellites(table: &'static str, columns: &[SourceColumn]) -> Vec<Satellite> {
    let keys = structural(table);
    let mut out = Vec::new();
    if let Some(parent) = owner(table) {
        let name = match parent {
            Parent::Hub(h) => format!("sat_{}", h.name),
            Parent::Link(l) => format!("sat_{}", l.name),
        };
        out.push(Satellite {
            name,
            table,
            parent,
            attributes: columns
                .iter()
                .filter(|c| !keys.contains(&c.name.as_str()))
                .cloned()
                .collect(),
            effectivity_of: None,
        });
    }
    for l in links_of(table) {
        if let Some(d) = l.driving {
            out.push(Satellite {
                name: format!("sat_{}_eff", l.name),
                table,
                parent: Parent::Hub(hub(l.roles[d].hub)),
                attributes: Vec::new(),
                effectivity_of: Some(l),
            });
        }
    }
    out
}

fn column_type<'a>(columns: &'a [SourceColumn], name: &str) -> &'a str {
    columns
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.sql_type.as_str())
        .unwrap_or("text")
}

/// Idempotent DDL of the vault's tables for one source table (hubs shared by several
/// tables are created by each; IF NOT EXISTS makes that harmless). New source columns
/// are added to their satellite.
pub fn ddl(table: &'static str, columns: &[SourceColumn]) -> String {
    let mut sql = String::new();
    if let Some(h) = hub_of(table) {
        let _ = writeln!(
            sql,
            "CREATE TABLE IF NOT EXISTS hub_{} (hk CHAR(32) PRIMARY KEY, {} {} NOT NULL UNIQUE, \
             load_ts TIMESTAMPTZ NOT NULL, record_source TEXT NOT NULL);",
            h.name,
            h.key,
            column_type(columns, h.key)
        );
    }
    for l in links_of(table) {
        let mut cols = String::from("hk CHAR(32) PRIMARY KEY");
        for r in l.roles {
            let _ = write!(cols, ", {} CHAR(32) NOT NULL", r.as_column);
        }
        if let Some(d) = l.dependent {
            let _ = write!(cols, ", {d} {} NOT NULL", column_type(columns, d));
        }
        let _ = writeln!(
            sql,
            "CREATE TABLE IF NOT EXISTS link_{} ({cols}, load_ts TIMESTAMPTZ NOT NULL, \
             record_source TEXT NOT NULL);",
            l.name
        );
        for r in l.roles {
            let _ = writeln!(
                sql,
                "CREATE INDEX IF NOT EXISTS link_{0}_{1}_idx ON link_{0} ({1});",
                l.name, r.as_column
            );
        }
    }
    for s in satellites(table, columns) {
        let _ = writeln!(
            sql,
            "CREATE TABLE IF NOT EXISTS {} ({SATELLITE_COLUMNS}, PRIMARY KEY (hk, seq));",
            s.name
        );
        let _ = writeln!(
            sql,
            "CREATE INDEX IF NOT EXISTS {0}_applied_idx ON {0} (hk, applied_ts);",
            s.name
        );
        if s.effectivity_of.is_some() {
            let _ = writeln!(
                sql,
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS link_hk CHAR(32);",
                s.name
            );
        }
        for a in &s.attributes {
            let _ = writeln!(
                sql,
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {};",
                s.name, a.name, a.sql_type
            );
        }
    }
    sql
}

/// The latest row of satellite `sat` for hash key `hk` as of `filter` (a condition on
/// the satellite's alias x), as a LATERAL subquery.
fn latest(sat: &str, hk: &str, filter: &str) -> String {
    format!("LATERAL (SELECT * FROM {sat} x WHERE x.hk = {hk}{filter} ORDER BY x.seq DESC LIMIT 1)")
}

/// The state of `table` reconstructed from the vault, in the source's columns and
/// order: every key whose latest satellite row (as of `filter`) is not a deletion.
pub fn state_query(table: &'static str, columns: &[SourceColumn], filter: &str) -> String {
    let sats = satellites(table, columns);
    let Some(owner_sat) = sats.iter().find(|s| s.effectivity_of.is_none()) else {
        return String::new();
    };
    let mut from = String::new();
    let mut select = Vec::new();
    match owner_sat.parent {
        Parent::Hub(h) => {
            let _ = write!(
                from,
                "hub_{} o JOIN {} s ON NOT s.is_deleted",
                h.name,
                latest(&owner_sat.name, "o.hk", filter)
            );
        }
        Parent::Link(l) => {
            let _ = write!(
                from,
                "link_{} o JOIN {} s ON NOT s.is_deleted",
                l.name,
                latest(&owner_sat.name, "o.hk", filter)
            );
        }
    }
    // Where each relationship column comes from: (column, expression).
    let mut sources: Vec<(String, String)> = Vec::new();
    if let Parent::Hub(h) = owner_sat.parent {
        sources.push((h.key.to_string(), format!("o.{}", h.key)));
    }
    for (i, l) in links_of(table).enumerate() {
        match l.driving {
            Some(d) => {
                let e = format!("e{i}");
                let k = format!("l{i}");
                let _ = write!(
                    from,
                    " LEFT JOIN {} {e} ON true LEFT JOIN link_{} {k} ON {k}.hk = {e}.link_hk",
                    latest(&format!("sat_{}_eff", l.name), "o.hk", filter),
                    l.name
                );
                for (j, r) in l.roles.iter().enumerate().filter(|(j, _)| *j != d) {
                    let rh = hub(r.hub);
                    let alias = format!("h{i}_{j}");
                    let _ = write!(
                        from,
                        " LEFT JOIN hub_{} {alias} ON {alias}.hk = {k}.{}",
                        rh.name, r.as_column
                    );
                    sources.push((r.column.to_string(), format!("{alias}.{}", rh.key)));
                }
            }
            None => {
                for (j, r) in l.roles.iter().enumerate() {
                    let rh = hub(r.hub);
                    let alias = format!("h{i}_{j}");
                    let _ = write!(
                        from,
                        " JOIN hub_{} {alias} ON {alias}.hk = o.{}",
                        rh.name, r.as_column
                    );
                    sources.push((r.column.to_string(), format!("{alias}.{}", rh.key)));
                }
                if let Some(d) = l.dependent {
                    sources.push((d.to_string(), format!("o.{d}")));
                }
            }
        }
    }
    for c in columns {
        let expr = sources
            .iter()
            .find(|(name, _)| *name == c.name)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| format!("s.{}", c.name));
        select.push(format!("{expr} AS {}", c.name));
    }
    format!("SELECT {} FROM {from}", select.join(", "))
}

/// The current-state view and the point-in-time function of `table`.
pub fn views(table: &'static str, columns: &[SourceColumn]) -> String {
    format!(
        "DROP VIEW IF EXISTS current_{table} CASCADE;\n\
         CREATE VIEW current_{table} AS {};\n\
         CREATE FUNCTION {table}_as_of(as_of TIMESTAMPTZ) RETURNS SETOF current_{table} \
         LANGUAGE sql STABLE AS $$ {} $$;\n",
        state_query(table, columns, ""),
        state_query(table, columns, " AND x.applied_ts <= as_of"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            sql_type: ty.into(),
            data_type: ty.into(),
            nullable: false,
            max_chars: None,
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn every_source_table_feeds_the_vault_and_every_name_is_in_the_schema() {
        assert_eq!(source_tables().len(), common::schema::TABLES.len());
        for h in HUBS {
            common::schema::column(h.table, h.key);
        }
        for l in LINKS {
            for r in l.roles {
                common::schema::column(l.table, r.column);
                hub(r.hub);
            }
            if let Some(d) = l.dependent {
                common::schema::column(l.table, d);
            }
        }
        for t in source_tables() {
            assert!(owner(t).is_some(), "{t} has no entity");
        }
    }

    #[test]
    fn keys_and_relationships_are_not_attributes() {
        let cols = [
            col("order_id", "integer"),
            col("user_id", "integer"),
            col("status", "text"),
        ];
        let sats = satellites("orders", &cols);
        assert_eq!(sats[0].name, "sat_order");
        assert_eq!(
            sats[0]
                .attributes
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["status"]
        );
        assert_eq!(sats[1].name, "sat_order_user_eff");
    }

    #[test]
    fn the_current_view_has_the_source_columns_in_order() {
        let cols = [
            col("order_id", "integer"),
            col("user_id", "integer"),
            col("status", "text"),
        ];
        let q = state_query("orders", &cols, "");
        assert!(q.starts_with("SELECT o.order_id AS order_id, h0_1.user_id AS user_id, s.status"));
        let lines = [
            col("order_detail_id", "integer"),
            col("order_id", "integer"),
            col("product_id", "integer"),
            col("quantity", "integer"),
        ];
        let q = state_query("order_details", &lines, "");
        assert!(q.contains("FROM link_order_line o JOIN LATERAL"));
        assert!(q.contains("o.order_detail_id AS order_detail_id"));
    }
}
