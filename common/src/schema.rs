//! The platform's tables and marts: the only identifiers that jobs put into SQL,
//! so every user-supplied name is checked against these definitions.

/// How a column is rendered to text for content checksums, so that PostgreSQL and
/// MySQL produce byte-identical strings for the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Decimal,
    Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub primary_key: &'static str,
    pub columns: &'static [Column],
}

use Kind::*;

/// The replicated tables, parents before children (foreign keys point backwards).
pub const TABLES: [Table; 5] = [
    Table {
        name: "users",
        primary_key: "user_id",
        columns: &[
            col("user_id", Int),
            col("first_name", Text),
            col("last_name", Text),
            col("email", Text),
            nullable("phone", Text),
            col("registration_date", Timestamp),
            col("loyalty_status", Text),
        ],
    },
    Table {
        name: "product_categories",
        primary_key: "category_id",
        columns: &[
            col("category_id", Int),
            col("name", Text),
            nullable("parent_category_id", Int),
        ],
    },
    Table {
        name: "products",
        primary_key: "product_id",
        columns: &[
            col("product_id", Int),
            col("name", Text),
            nullable("description", Text),
            col("category_id", Int),
            col("price", Decimal),
            col("stock_quantity", Int),
            col("creation_date", Timestamp),
        ],
    },
    Table {
        name: "orders",
        primary_key: "order_id",
        columns: &[
            col("order_id", Int),
            col("user_id", Int),
            col("order_date", Timestamp),
            col("total_amount", Decimal),
            col("status", Text),
            nullable("delivery_date", Timestamp),
        ],
    },
    Table {
        name: "order_details",
        primary_key: "order_detail_id",
        columns: &[
            col("order_detail_id", Int),
            col("order_id", Int),
            col("product_id", Int),
            col("quantity", Int),
            col("price_per_unit", Decimal),
            col("total_price", Decimal),
        ],
    },
];

/// The table of that name, if it is one of the platform's.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The analytical marts built in MySQL.
pub const MARTS: [&str; 3] = [
    "mart_user_activity",
    "mart_product_sales",
    "mart_average_check",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_among_its_columns() {
        for t in &TABLES {
            assert_eq!(t.columns[0].name, t.primary_key, "{}", t.name);
            assert!(!t.columns[0].nullable);
        }
        assert!(table("users").is_some());
        assert!(table("users; drop").is_none());
    }
}
