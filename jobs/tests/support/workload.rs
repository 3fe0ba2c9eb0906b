//! A change workload on the source that exercises what breaks naive change appliers.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

/// A random mix of inserts, updates and deletes over all five tables, with the cases
/// that break naive appliers: one key updated many times in one transaction, a row
/// deleted and inserted again with the same key, multi-table transactions, two rows
/// swapping their unique e-mails.
pub async fn random_workload(pg: &PgPool, tag: &str, seed: u64, rounds: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..rounds {
        let mut tx = pg.begin().await.expect("begin");
        // A user, a category, a product and an order with two lines, in one transaction.
        let (user,): (i32,) = sqlx::query_as(
            "INSERT INTO users (first_name, last_name, email, phone, registration_date, \
             loyalty_status) VALUES ('Zoë', 'O''Brien | ✓ 😀', $1, NULL, \
             '2025-12-31 23:59:59.123456', 'Gold') RETURNING user_id",
        )
        .bind(format!(
            "{tag}.{round}.{}@example.com",
            rng.random_range(0..1_000_000)
        ))
        .fetch_one(&mut *tx)
        .await
        .expect("insert user");
        let (category,): (i32,) = sqlx::query_as(
            "INSERT INTO product_categories (name, parent_category_id) VALUES ($1, NULL) \
             RETURNING category_id",
        )
        .bind(format!("{tag} category {round}"))
        .fetch_one(&mut *tx)
        .await
        .expect("insert category");
        let (product,): (i32,) = sqlx::query_as(
            "INSERT INTO products (name, description, category_id, price, stock_quantity, \
             creation_date) VALUES ($1, 'back\\slash\ttab', $2, 12.34, 5, now()) \
             RETURNING product_id",
        )
        .bind(format!("{tag} product {round}"))
        .bind(category)
        .fetch_one(&mut *tx)
        .await
        .expect("insert product");
        let (order,): (i32,) = sqlx::query_as(
            "INSERT INTO orders (user_id, order_date, total_amount, status) \
             VALUES ($1, now(), 24.68, 'Pending') RETURNING order_id",
        )
        .bind(user)
        .fetch_one(&mut *tx)
        .await
        .expect("insert order");
        for _ in 0..2 {
            sqlx::query(
                "INSERT INTO order_details (order_id, product_id, quantity, price_per_unit, \
                 total_price) VALUES ($1, $2, 1, 12.34, 12.34)",
            )
            .bind(order)
            .bind(product)
            .execute(&mut *tx)
            .await
            .expect("insert line");
        }
        // The same order updated many times in one transaction: the last wins.
        for i in 0..rng.random_range(2..12) {
            sqlx::query("UPDATE orders SET total_amount = $2, status = $3 WHERE order_id = $1")
                .bind(order)
                .bind(rust_decimal::Decimal::new(1000 + i, 2))
                .bind(if i % 2 == 0 { "Completed" } else { "Pending" })
                .execute(&mut *tx)
                .await
                .expect("update order");
        }
        tx.commit().await.expect("commit");

        // Existing rows of the default data set: updates and deletes.
        let (victim,): (i32,) =
            sqlx::query_as("SELECT order_detail_id FROM order_details ORDER BY random() LIMIT 1")
                .fetch_one(pg)
                .await
                .expect("pick a line");
        sqlx::query("DELETE FROM order_details WHERE order_detail_id = $1")
            .bind(victim)
            .execute(pg)
            .await
            .expect("delete line");
        sqlx::query(
            "UPDATE products SET price = price + 0.01, stock_quantity = stock_quantity + 1 \
             WHERE product_id = (SELECT product_id FROM products ORDER BY random() LIMIT 1)",
        )
        .execute(pg)
        .await
        .expect("update product");
        sqlx::query(
            "UPDATE users SET loyalty_status = $1 WHERE user_id = \
             (SELECT user_id FROM users ORDER BY random() LIMIT 1)",
        )
        .bind(["Gold", "Silver", "Bronze"][rng.random_range(0..3)])
        .execute(pg)
        .await
        .expect("update user");
        // Delete, then insert again with the same key (and other values).
        let mut tx = pg.begin().await.expect("begin");
        sqlx::query("DELETE FROM order_details WHERE order_id = $1")
            .bind(order)
            .execute(&mut *tx)
            .await
            .expect("delete lines");
        sqlx::query("DELETE FROM orders WHERE order_id = $1")
            .bind(order)
            .execute(&mut *tx)
            .await
            .expect("delete order");
        sqlx::query(
            "INSERT INTO orders (order_id, user_id, order_date, total_amount, status, \
             delivery_date) VALUES ($1, $2, '2026-01-02 03:04:05.5', 99.99, 'Completed', \
             '2026-01-03 00:00:00')",
        )
        .bind(order)
        .bind(user)
        .execute(&mut *tx)
        .await
        .expect("re-insert order");
        tx.commit().await.expect("commit");
    }
    // Two users swap their e-mails through a temporary value, in one transaction.
    let users: Vec<(i32, String)> = sqlx::query_as(
        "SELECT user_id, email FROM users WHERE email LIKE $1 || '.%' ORDER BY user_id LIMIT 2",
    )
    .bind(tag)
    .fetch_all(pg)
    .await
    .expect("two users");
    if let [(a, ea), (b, eb)] = users.as_slice() {
        let mut tx = pg.begin().await.expect("begin");
        for (id, email) in [
            (*a, format!("{tag}.swap@example.com")),
            (*b, ea.clone()),
            (*a, eb.clone()),
        ] {
            sqlx::query("UPDATE users SET email = $2 WHERE user_id = $1")
                .bind(id)
                .bind(email)
                .execute(&mut *tx)
                .await
                .expect("swap e-mails");
        }
        tx.commit().await.expect("commit");
    }
}
