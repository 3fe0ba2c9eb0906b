//! The jobs' own connections to PostgreSQL (Spark's go through JDBC on the cluster).

use std::time::Duration;

use anyhow::{Context, Result};
use common::PostgresSettings;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub async fn pool(pg: &PostgresSettings) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(pg.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", pg.describe()))
}

mod snapshot;
pub mod standby;

pub use snapshot::Snapshot;
pub use standby::{ReadFrom, ReadSettings};
