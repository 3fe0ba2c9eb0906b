//! Where the services are: the settings every job shares, read from the environment /
//! `.env` with CLI overrides (each job's own flags live in its module's `Args`).

use common::{KafkaSettings, MysqlSettings, PostgresSettings, SparkSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub postgres: PostgresSettings,
    #[command(flatten)]
    pub mysql: MysqlSettings,
    #[command(flatten)]
    pub kafka: KafkaSettings,
    #[command(flatten)]
    pub spark: SparkSettings,
}
