//! The command line: one sub-command per generator, each owning its flags
//! (`pg::PgArgs`, `kafka::KafkaArgs`, `serve::ServeArgs`).

use clap::{Parser, Subcommand};

use crate::changes::ChangesArgs;
use crate::kafka::KafkaArgs;
use crate::pg::PgArgs;
use crate::serve::ServeArgs;

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
    /// Insert, update and delete rows of the PostgreSQL tables, one shop action per
    /// transaction (a live source for change data capture)
    Changes(ChangesArgs),
    /// Serve a page and a JSON API (OpenAPI at /api/openapi.json) that start runs of
    /// the Kafka or PostgreSQL generator on demand, until SIGTERM
    Serve(ServeArgs),
}
