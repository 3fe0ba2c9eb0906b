//! Where the services are: the settings every job shares, read from the environment /
//! `.env` with CLI overrides (each job's own flags live in its module's `Args`).

use common::{KafkaSettings, MysqlSettings, PostgresSettings, SparkSettings};

use crate::postgres::ReadSettings;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub postgres: PostgresSettings,
    /// Where the batch reads of PostgreSQL go (the primary or its hot standby).
    #[command(flatten)]
    pub postgres_reads: ReadSettings,
    #[command(flatten)]
    pub mysql: MysqlSettings,
    #[command(flatten)]
    pub kafka: KafkaSettings,
    #[command(flatten)]
    pub spark: SparkSettings,
}
