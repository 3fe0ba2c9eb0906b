//! Names of the platform's tables and marts: the only identifiers that jobs put
//! into SQL, so every user-supplied name is checked against these lists.

/// The replicated tables, parents before children (foreign keys point backwards).
pub const TABLES: [&str; 5] = [
    "users",
    "product_categories",
    "products",
    "orders",
    "order_details",
];

/// Primary key of each table in [`TABLES`].
pub fn primary_key(table: &str) -> Option<&'static str> {
    Some(match table {
        "users" => "user_id",
        "product_categories" => "category_id",
        "products" => "product_id",
        "orders" => "order_id",
        "order_details" => "order_detail_id",
        _ => return None,
    })
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
    fn every_table_has_a_primary_key() {
        for t in TABLES {
            assert!(primary_key(t).is_some(), "{t}");
        }
        assert_eq!(primary_key("nope"), None);
    }
}
