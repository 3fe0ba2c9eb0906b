//! The flag a long-running job (a continuous stream or change apply) watches to
//! stop its streaming queries cleanly: set on SIGTERM (Airflow, docker stop) or Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::SignalKind;

/// A flag that becomes true on SIGTERM or Ctrl-C.
pub fn requested() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("shutdown requested");
        flag.store(true, Ordering::SeqCst);
    });
    stop
}
