//! `datagen serve`: generation on demand, from a web page or a JSON API (OpenAPI at
//! `/api/openapi.json`). Each run calls the same functions as `datagen kafka` and
//! `datagen pg`, with a progress sink the API reads and a cancellation token.

mod api;
mod args;
pub mod runs;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use api::ApiDoc;
pub use args::ServeArgs;
use runs::Runs;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Serves until SIGTERM / SIGINT; then cancels the runs going on and waits (up to
/// 30 s) for them to end, so Kafka gets every produced event flushed.
pub async fn run(args: ServeArgs, shutdown: crate::shutdown::Shutdown) -> Result<(), ServeError> {
    let addr = format!("{}:{}", args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let runs = Arc::new(Runs::new(args));
    let l = runs.limits();
    tracing::info!(
        "generator listening on http://{addr} (API /api/runs, OpenAPI /api/openapi.json); at most {} events or {} users per run, {} events/s, {} runs at once",
        l.max_count,
        l.max_pg_users,
        l.max_rate,
        l.max_running
    );
    let stop = shutdown.clone();
    axum::serve(listener, api::router(runs.clone()))
        .with_graceful_shutdown(async move { stop.requested().await })
        .await
        .map_err(ServeError::Serve)?;
    runs.cancel_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs.running() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("generator stopped");
    Ok(())
}
