//! `datagen pg`'s flags: each reads its `.env` name and can be overridden on the
//! command line. The generator itself takes plain values ([`Volumes`]).

use clap::Args;
use common::PostgresSettings;

use super::generate::{DEFAULT_VOLUMES, Volumes};

/// The seed of the default data set: the one the pipeline tests expect.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Clone, Args)]
pub struct PgArgs {
    #[command(flatten)]
    pub postgres: PostgresSettings,
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// Seed of the generator: the same seed, volumes and --as-of give the same data
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Reference day of the data set (orders fall in the year before it); default: today (UTC)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<chrono::NaiveDate>,
    /// Empty the five tables and regenerate them (in the same transaction)
    #[arg(long)]
    pub reset: bool,
    /// How long to try to reach PostgreSQL before giving up
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
}

/// Row counts per table, from `.env`, overridable by flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct VolumeArgs {
    /// Number of users
    #[arg(long = "users", env = "PG_DATAGEN_NUM_USERS", default_value_t = DEFAULT_VOLUMES.users)]
    pub users: usize,
    /// Number of products
    #[arg(
        long = "products",
        env = "PG_DATAGEN_NUM_PRODUCTS",
        default_value_t = DEFAULT_VOLUMES.products
    )]
    pub products: usize,
    /// Number of orders
    #[arg(
        long = "orders",
        env = "PG_DATAGEN_NUM_ORDERS",
        default_value_t = DEFAULT_VOLUMES.orders
    )]
    pub orders: usize,
    /// Number of order lines
    #[arg(
        long = "order-details",
        env = "PG_DATAGEN_NUM_ORDER_DETAILS",
        default_value_t = DEFAULT_VOLUMES.order_details
    )]
    pub order_details: usize,
    /// Number of product categories (10 predefined top categories, then random ones)
    #[arg(
        long = "categories",
        env = "PG_DATAGEN_NUM_CATEGORIES",
        default_value_t = DEFAULT_VOLUMES.categories
    )]
    pub categories: usize,
}

impl From<VolumeArgs> for Volumes {
    fn from(v: VolumeArgs) -> Self {
        Volumes {
            users: v.users,
            products: v.products,
            orders: v.orders,
            order_details: v.order_details,
            categories: v.categories,
        }
    }
}
