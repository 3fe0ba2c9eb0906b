use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use common::{KafkaSettings, MysqlSettings, PostgresSettings, SparkSettings};
use jobs::check::{self, Service, Targets};

/// The platform's jobs: each one sends its work to the Spark cluster over Spark
/// Connect. Settings come from the environment / .env; flags override them.
#[derive(Debug, Parser)]
#[command(name = "jobs", version, about)]
struct Cli {
    #[command(flatten)]
    postgres: PostgresSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
    #[command(flatten)]
    spark: SparkSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that every service is usable: a query on PostgreSQL and MySQL as the
    /// platform user, a Kafka produce/consume round trip, a Spark Connect query.
    Check {
        /// Keep retrying for up to this many seconds before giving up
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Only these services (default: all)
        #[arg(long = "service", value_enum)]
        services: Vec<Service>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    common::load_dotenv();
    common::telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { wait, ref services } => {
            let all = [
                Service::Postgres,
                Service::Mysql,
                Service::Kafka,
                Service::SparkConnect,
            ];
            let services = if services.is_empty() { &all[..] } else { services };
            let targets = Targets {
                postgres: &cli.postgres,
                mysql: &cli.mysql,
                kafka: &cli.kafka,
                spark: &cli.spark,
            };
            match check::check_all(&targets, services, Duration::from_secs(wait)).await {
                Ok(()) => ExitCode::SUCCESS,
                Err((service, e)) => {
                    tracing::error!("service={} is not usable: {e:#}", service.name());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
