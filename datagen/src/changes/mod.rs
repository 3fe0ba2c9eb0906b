//! `datagen changes`: a live workload on the PostgreSQL tables, for change data
//! capture to carry to MySQL: each transaction is one thing the shop does (an order
//! placed, paid and delivered, a price change, a line removed, a customer joining,
//! moving loyalty tier, or leaving with their orders). Rows are picked at random
//! in SQL, so it works on any data set `datagen pg` made: the first key at or after a
//! random point of the key range, an index lookup (`ORDER BY random()` read whole
//! tables, and took the CPU the platform measured beside it).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Args;
use common::PostgresSettings;
use common::schema::{LOYALTY_STATUSES, ORDER_COMPLETED, ORDER_PENDING};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Debug, Clone, Args)]
pub struct ChangesArgs {
    #[command(flatten)]
    pub postgres: PostgresSettings,
    /// Number of transactions
    #[arg(long, default_value_t = 100)]
    pub count: u64,
    /// Transactions per second at most (0: as fast as PostgreSQL takes them)
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seed of the choices made in Rust (which kind of change, values)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Rows inserted, updated and deleted over the run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

pub async fn run(args: &ChangesArgs) -> Result<Tally> {
    ensure!(
        args.rate >= 0.0 && args.rate.is_finite(),
        "--rate must be 0 or positive"
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(args.postgres.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", args.postgres.describe()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut tally = Tally::default();
    let started = Instant::now();
    for i in 0..args.count {
        if args.rate > 0.0 {
            let due = started + Duration::from_secs_f64(i as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let t = one(&pool, &mut rng).await?;
        tally.inserted += t.inserted;
        tally.updated += t.updated;
        tally.deleted += t.deleted;
    }
    Ok(tally)
}

/// One transaction of a randomly chosen kind.
async fn one(pool: &PgPool, rng: &mut ChaCha8Rng) -> Result<Tally> {
    let mut tx = pool.begin().await.context("cannot begin a transaction")?;
    let mut t = Tally::default();
    match rng.random_range(0..100) {
        0..35 => place_order(&mut tx, rng, &mut t).await?,
        35..55 => {
            t.updated += exec(
                &mut tx,
                "UPDATE orders SET status = $1, delivery_date = now() WHERE order_id = \
                 (SELECT order_id FROM orders WHERE status = $2 AND order_id >= \
                  (SELECT (random() * max(order_id))::int FROM orders) ORDER BY order_id LIMIT 1)",
                &[ORDER_COMPLETED, ORDER_PENDING],
            )
            .await?;
        }
        55..70 => {
            t.updated += exec(
                &mut tx,
                "UPDATE products SET price = round(price * (0.9 + random() / 5)::numeric, 2), \
                 stock_quantity = stock_quantity + 1 WHERE product_id = \
                 (SELECT product_id FROM products WHERE product_id >= \
                  (SELECT (random() * max(product_id))::int FROM products) ORDER BY product_id LIMIT 1)",
                &[],
            )
            .await?;
        }
        70..80 => {
            t.deleted += exec(
                &mut tx,
                "DELETE FROM order_details WHERE order_detail_id = \
                 (SELECT order_detail_id FROM order_details WHERE order_detail_id >= \
                  (SELECT (random() * max(order_detail_id))::int FROM order_details) \
                  ORDER BY order_detail_id LIMIT 1)",
                &[],
            )
            .await?;
        }
        80..90 => {
            let n = rng.random_range(0..1_000_000_000u64);
            t.inserted += exec(
                &mut tx,
                "INSERT INTO users (first_name, last_name, email, phone, registration_date, \
                 loyalty_status) VALUES ('Nova', 'Change', 'change.' || $1 || '@example.com', \
                 NULL, now(), $2) ON CONFLICT DO NOTHING",
                &[&n.to_string(), LOYALTY_STATUSES[0]],
            )
            .await?;
        }
        90..97 => {
            let tier = LOYALTY_STATUSES[rng.random_range(0..LOYALTY_STATUSES.len())];
            t.updated += exec(
                &mut tx,
                "UPDATE users SET loyalty_status = $1 WHERE user_id = \
                 (SELECT user_id FROM users WHERE user_id >= \
                  (SELECT (random() * max(user_id))::int FROM users) ORDER BY user_id LIMIT 1)",
                &[tier],
            )
            .await?;
        }
        _ => leave(&mut tx, &mut t).await?,
    }
    tx.commit().await.context("cannot commit")?;
    Ok(t)
}

async fn exec(
    tx: &mut Transaction<'_, Postgres>,
    sql: &'static str,
    binds: &[&str],
) -> Result<u64> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.execute(&mut **tx)
        .await
        .with_context(|| format!("change failed: {sql}"))?
        .rows_affected())
}

/// An order of 1-3 lines for a random user, its total the sum of its lines.
async fn place_order(
    tx: &mut Transaction<'_, Postgres>,
    rng: &mut ChaCha8Rng,
    t: &mut Tally,
) -> Result<()> {
    let order: Option<(i32,)> = sqlx::query_as(
        "INSERT INTO orders (user_id, order_date, total_amount, status) \
         SELECT user_id, now(), 0, $1 FROM users WHERE user_id >= \
         (SELECT (random() * max(user_id))::int FROM users) ORDER BY user_id LIMIT 1 RETURNING order_id",
    )
    .bind(ORDER_PENDING)
    .fetch_optional(&mut **tx)
    .await
    .context("cannot place an order")?;
    let Some((order,)) = order else {
        return Ok(()); // no users yet
    };
    t.inserted += 1;
    let lines = rng.random_range(1..=3i32);
    t.inserted += sqlx::query(
        "INSERT INTO order_details (order_id, product_id, quantity, price_per_unit, total_price) \
         SELECT $1, product_id, q, price, price * q FROM \
         (SELECT product_id, price, 1 + floor(random() * 3)::int AS q FROM products \
          ORDER BY random() LIMIT $2) p",
    )
    .bind(order)
    .bind(lines)
    .execute(&mut **tx)
    .await
    .context("cannot add order lines")?
    .rows_affected();
    sqlx::query(
        "UPDATE orders SET total_amount = (SELECT coalesce(sum(total_price), 0) \
         FROM order_details WHERE order_id = $1) WHERE order_id = $1",
    )
    .bind(order)
    .execute(&mut **tx)
    .await
    .context("cannot total the order")?;
    t.updated += 1;
    Ok(())
}

/// A customer leaves: their order lines, orders and account go, in one transaction.
async fn leave(tx: &mut Transaction<'_, Postgres>, t: &mut Tally) -> Result<()> {
    let user: Option<(i32,)> = sqlx::query_as(
        "SELECT user_id FROM users WHERE user_id >= \
             (SELECT (random() * max(user_id))::int FROM users) ORDER BY user_id LIMIT 1 FOR UPDATE",
    )
    .fetch_optional(&mut **tx)
    .await
    .context("cannot pick a user")?;
    let Some((user,)) = user else { return Ok(()) };
    for sql in [
        "DELETE FROM order_details WHERE order_id IN (SELECT order_id FROM orders WHERE user_id = $1)",
        "DELETE FROM orders WHERE user_id = $1",
        "DELETE FROM users WHERE user_id = $1",
    ] {
        t.deleted += sqlx::query(sql)
            .bind(user)
            .execute(&mut **tx)
            .await
            .with_context(|| format!("change failed: {sql}"))?
            .rows_affected();
    }
    Ok(())
}
