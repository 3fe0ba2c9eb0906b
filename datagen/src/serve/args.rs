//! `datagen serve`'s flags: each reads its `.env` name and can be overridden on the
//! command line.

use clap::Args;
use common::{KafkaSettings, PostgresSettings};

use crate::pg::VolumeArgs;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub kafka: KafkaSettings,
    #[command(flatten)]
    pub postgres: PostgresSettings,
    /// The data set's proportions: a PostgreSQL run of N users scales these volumes
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// Address to listen on (compose: 0.0.0.0 inside the container)
    #[arg(long, env = "GENERATOR_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Port of the page and the API
    #[arg(long, env = "GENERATOR_PORT", default_value_t = 8090)]
    pub port: u16,
    /// Most events one Kafka run may ask for
    #[arg(long, env = "GENERATOR_MAX_COUNT", default_value_t = 1_000_000)]
    pub max_count: u64,
    /// Most users one PostgreSQL run may ask for (the other tables scale with it)
    #[arg(long, env = "GENERATOR_MAX_PG_USERS", default_value_t = 50_000)]
    pub max_pg_users: u64,
    /// Highest rate (events/s) a run may ask for; a run without a rate goes at this pace
    #[arg(long, env = "GENERATOR_MAX_RATE", default_value_t = 1_000_000.0)]
    pub max_rate: f64,
    /// Runs going on at once; more are refused with 429
    #[arg(long, env = "GENERATOR_MAX_RUNNING", default_value_t = 4)]
    pub max_running: usize,
    /// Finished runs kept for the list (the newest)
    #[arg(long, env = "GENERATOR_HISTORY", default_value_t = 50)]
    pub history: usize,
    /// How long a Kafka run waits for the broker and the topic before it fails
    #[arg(long, env = "GENERATOR_KAFKA_WAIT_SECS", default_value_t = 10)]
    pub kafka_wait_secs: u64,
    /// How long a PostgreSQL run tries to connect before it fails
    #[arg(long, env = "GENERATOR_PG_CONNECT_SECS", default_value_t = 10)]
    pub pg_connect_secs: u64,
}
