//! `datagen pg` fills PostgreSQL, `datagen kafka` produces registration events,
//! `datagen serve` runs either on demand from a page or an API.
//! Errors end the process with one line naming what failed and where.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use datagen::cli::{Cli, Command};
use datagen::kafka::KafkaArgs;
use datagen::pg::Outcome;
use datagen::pg::PgArgs;
use datagen::progress::Terminal;
use datagen::shutdown::Shutdown;

// Events are allocated on the generating thread and freed on librdkafka's after
// delivery; glibc's arenas serialise those frees behind a lock, mimalloc does not.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    common::load_dotenv();
    common::telemetry::init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pg(args) => pg(&args).await,
        Command::Kafka(args) => kafka(&args).await,
        Command::Changes(args) => changes(&args).await,
        Command::Serve(args) => serve(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the library errors already name their cause; newlines folded.
            let line = format!("{e}").replace('\n', " ");
            tracing::error!("{line}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: datagen::serve::ServeArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    datagen::serve::run(args, shutdown).await?;
    Ok(())
}

async fn changes(args: &datagen::changes::ChangesArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // The whole chain: the database's own message is the useful part.
    let t = datagen::changes::run(args)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    tracing::info!(
        "{} transactions in {:.1} s: {} rows inserted, {} updated, {} deleted",
        args.count,
        started.elapsed().as_secs_f64(),
        t.inserted,
        t.updated,
        t.deleted
    );
    Ok(())
}

async fn pg(args: &PgArgs) -> anyhow::Result<()> {
    // All or nothing: a signal aborts the process and PostgreSQL rolls back.
    let progress = Terminal::auto();
    match datagen::pg::run(args, &Shutdown::new(), &progress).await? {
        Outcome::AlreadyPopulated(counts) => {
            let counts = counts
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::info!(
                "already populated, nothing to do ({counts}); use --reset to regenerate"
            );
        }
        Outcome::Loaded { tables, elapsed } => {
            let rows: usize = tables.iter().map(|(_, n)| n).sum();
            let detail = tables
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::info!(
                "loaded {rows} rows ({detail}) in {:.3} s: {:.0} rows/s (seed {}{})",
                elapsed.as_secs_f64(),
                rows as f64 / elapsed.as_secs_f64().max(1e-9),
                args.seed,
                if args.reset { ", after --reset" } else { "" }
            );
        }
    }
    Ok(())
}

async fn kafka(args: &KafkaArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals()?;
    let stats = datagen::kafka::run(args, &shutdown, Arc::new(Terminal::auto())).await?;
    tracing::info!(
        "delivered {} of {} events ({} malformed) to topic {} in {:.3} s: {:.0} events/s",
        stats.delivered,
        stats.produced,
        stats.malformed(),
        args.kafka.topic,
        stats.elapsed.as_secs_f64(),
        stats.per_sec()
    );
    Ok(())
}
