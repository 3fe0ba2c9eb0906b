//! The jobs' own connections to MySQL, and the staging → verify → swap path that every
//! job writing a MySQL table goes through (`staging`).

pub mod staging;

use std::time::Duration;

use anyhow::{Context, Result};
use common::MysqlSettings;
use sqlx::MySqlPool;
use sqlx::mysql::MySqlPoolOptions;

pub async fn pool(my: &MysqlSettings) -> Result<MySqlPool> {
    MySqlPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(my.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", my.describe()))
}
