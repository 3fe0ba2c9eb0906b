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
    /// Longest value in characters (`VARCHAR(n)` on both sides); `None`: unbounded.
    pub max_len: Option<usize>,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
        max_len: None,
    }
}

const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column {
        nullable: true,
        ..col(name, kind)
    }
}

const fn varchar(name: &'static str, max_len: usize) -> Column {
    Column {
        max_len: Some(max_len),
        ..col(name, Text)
    }
}

const fn nullable_varchar(name: &'static str, max_len: usize) -> Column {
    Column {
        nullable: true,
        ..varchar(name, max_len)
    }
}

/// The values `users.loyalty_status` accepts (a CHECK in PostgreSQL).
pub const LOYALTY_STATUSES: [&str; 3] = ["Gold", "Silver", "Bronze"];

pub const ORDER_PENDING: &str = "Pending";
pub const ORDER_COMPLETED: &str = "Completed";
/// The values `orders.status` accepts (a CHECK in PostgreSQL).
pub const ORDER_STATUSES: [&str; 2] = [ORDER_PENDING, ORDER_COMPLETED];

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
            varchar("first_name", 50),
            varchar("last_name", 50),
            varchar("email", 100),
            nullable_varchar("phone", 20),
            col("registration_date", Timestamp),
            varchar("loyalty_status", 10),
        ],
    },
    Table {
        name: "product_categories",
        primary_key: "category_id",
        columns: &[
            col("category_id", Int),
            varchar("name", 100),
            nullable("parent_category_id", Int),
        ],
    },
    Table {
        name: "products",
        primary_key: "product_id",
        columns: &[
            col("product_id", Int),
            varchar("name", 100),
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
            varchar("status", 20),
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

/// The column `column` of `table`; panics on a name that is not in the schema (a
/// programming error, caught by the tests).
pub fn column(table: &str, column: &str) -> &'static Column {
    self::table(table)
        .and_then(|t| t.columns.iter().find(|c| c.name == column))
        .unwrap_or_else(|| panic!("no column {table}.{column} in the schema"))
}

/// The table of that name, if it is one of the platform's.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The fields of a registration event: the `users` columns but its key, in order.
pub fn event_fields() -> impl Iterator<Item = &'static Column> {
    TABLES[0]
        .columns
        .iter()
        .filter(|c| c.name != TABLES[0].primary_key)
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
        assert_eq!(TABLES[0].name, "users");
        let fields: Vec<_> = event_fields().map(|c| c.name).collect();
        assert_eq!(fields.len(), 6);
        assert!(!fields.contains(&"user_id"));
        assert_eq!(column("users", "email").max_len, Some(100));
        assert!(table("users; drop").is_none());
    }
}
