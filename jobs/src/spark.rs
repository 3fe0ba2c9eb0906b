//! Spark Connect sessions.

use anyhow::{Context, Result};
use spark_connect_rs::{SparkSession, SparkSessionBuilder};

/// Opens one Spark Connect session for a run. The `user_id` of the connection names
/// the run, so it can be told apart in the Connect tab of the Spark application UI.
pub async fn connect(remote: &str, run_name: &str) -> Result<SparkSession> {
    connect_to_session(remote, run_name, None).await
}

/// Like [`connect`], attaching to the server-side session `session_id` (a UUID) when
/// given, so that a later run can find what an earlier one left on the server.
pub async fn connect_to_session(
    remote: &str,
    run_name: &str,
    session_id: Option<&str>,
) -> Result<SparkSession> {
    let mut url = session_url(remote, run_name);
    if let Some(id) = session_id {
        url = format!("{url};session_id={id}");
    }
    SparkSessionBuilder::remote(&url)
        .build()
        .await
        .with_context(|| format!("cannot connect to Spark Connect at {remote}"))
}

/// `sc://host:port` plus the run name as `user_id`, keeping any parameters the
/// user already gave (`sc://host:port/;token=...`).
fn session_url(remote: &str, run_name: &str) -> String {
    let base = remote.trim_end_matches('/');
    if base.contains("user_id=") {
        base.to_string()
    } else if base.contains("/;") {
        format!("{base};user_id={run_name}")
    } else {
        format!("{base}/;user_id={run_name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_name_goes_into_the_url() {
        assert_eq!(
            session_url("sc://localhost:15002", "replicate"),
            "sc://localhost:15002/;user_id=replicate"
        );
        assert_eq!(
            session_url("sc://h:1/;token=t", "marts"),
            "sc://h:1/;token=t;user_id=marts"
        );
        assert_eq!(
            session_url("sc://h:1/;user_id=me", "x"),
            "sc://h:1/;user_id=me"
        );
    }
}
