use clap::{Parser, Subcommand};
use common::{KafkaSettings, PostgresSettings};

/// Fills PostgreSQL with the e-commerce data set and Kafka with registration events.
/// Settings come from the environment / .env; flags override them.
#[derive(Debug, Parser)]
#[command(name = "datagen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the e-commerce tables in PostgreSQL
    Pg {
        #[command(flatten)]
        postgres: PostgresSettings,
    },
    /// Produce user registration events to Kafka
    Kafka {
        #[command(flatten)]
        kafka: KafkaSettings,
    },
}

fn main() -> anyhow::Result<()> {
    common::load_dotenv();
    common::telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Pg { postgres } => anyhow::bail!("datagen pg is not implemented yet ({})", postgres.describe()),
        Command::Kafka { kafka } => anyhow::bail!("datagen kafka is not implemented yet ({})", kafka.topic),
    }
}
