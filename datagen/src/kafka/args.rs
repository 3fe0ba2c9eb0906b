//! `datagen kafka`'s flags: each reads its `.env` name and can be overridden on the
//! command line.

use clap::Args;
use common::KafkaSettings;

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
    /// Seed of the events' content (names, kinds); default: from the clock. E-mails
    /// stay unique across runs either way
    #[arg(long)]
    pub seed: Option<u64>,
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
