use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jobs::{Settings, cdc, check, dwh, list, marts, replicate, stream, summary};

/// The platform's jobs: each one sends its work to the Spark cluster over Spark
/// Connect. Settings come from the environment / .env; flags override them.
/// Passwords are read from the environment only (POSTGRES_PASSWORD, MYSQL_PASSWORD).
#[derive(Debug, Parser)]
#[command(name = "jobs", version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

/// One variant per job; each job's flags, logic and output live in its module.
#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Replicate(replicate::Args),
    Marts(marts::Args),
    Stream(stream::Args),
    Cdc(cdc::Args),
    Dwh(dwh::Args),
    Summary(summary::Args),
    List(list::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    common::load_dotenv();
    common::telemetry::init_tracing();
    let Cli { settings, command } = Cli::parse();
    jobs::output::exit(match command {
        Command::Check(args) => check::run(&settings, args).await,
        Command::Replicate(args) => replicate::run(&settings, args).await,
        Command::Marts(args) => marts::run(&settings, args).await,
        Command::Stream(args) => stream::run(&settings, args).await,
        Command::Cdc(args) => cdc::run(&settings, args).await,
        Command::Dwh(args) => dwh::run(&settings, args).await,
        Command::Summary(args) => summary::run(&settings, args).await,
        Command::List(args) => list::run(&settings, args).await,
    })
}
