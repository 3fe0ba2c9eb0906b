//! Command line: every setting reads its `.env` name and can be overridden by a flag.

use clap::{Args, Parser, Subcommand};
use common::{KafkaSettings, PostgresSettings};

use crate::pg::Volumes;

/// Fills PostgreSQL with the e-commerce data set and Kafka with registration events.
/// Settings come from the environment / .env; flags override them.
#[derive(Debug, Parser)]
#[command(name = "datagen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the e-commerce tables in PostgreSQL (idempotent, all-or-nothing)
    Pg(PgArgs),
    /// Produce user registration events to Kafka
    Kafka(KafkaArgs),
}

/// The seed of the default data set: the one the pipeline tests expect.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Clone, Args)]
pub struct PgArgs {
    #[command(flatten)]
    pub postgres: PostgresSettings,
    #[command(flatten)]
    pub volumes: Volumes,
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

#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    #[command(flatten)]
    pub kafka: KafkaSettings,
    /// Seconds between two events in the default (continuous) mode
    #[arg(long, env = "KAFKA_DATAGEN_PERIOD_SECS", default_value_t = 3.0)]
    pub period_secs: f64,
    /// Stop after this many events (without --rate: as fast as possible)
    #[arg(long)]
    pub count: Option<u64>,
    /// Events per second (overrides --period-secs); 0 means as fast as possible
    #[arg(long)]
    pub rate: Option<f64>,
    /// Share of malformed events (0..=1), to exercise the stream's quarantine
    #[arg(long, default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// How long to wait for Kafka (and the topic) to be up before giving up
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait_secs: u64,
    /// How long an event may take to be delivered before it is reported as failed
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub delivery_timeout_secs: u64,
}
