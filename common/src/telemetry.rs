use tracing_subscriber::EnvFilter;

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`), so that stdout stays
/// free for a command's own output (summaries, JSON).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
