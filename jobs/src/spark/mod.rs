//! Spark Connect sessions.
//!
//! Jobs attach to a *named* server-side session: its id is derived from a key (the
//! job and its target), so every run of a job lands in the same session while it is
//! alive. That is what makes a run find what a killed predecessor left on the server
//! (the stream's query), and it keeps the session's generated code warm: Spark
//! Connect gives every session its own class loader, on the executors too, so a new
//! session compiles and JIT-warms all its generated code again (docs/BENCHMARKS.md).
//!
//! The server refuses a session id it has closed (idle timeout, 60 min by default),
//! until it restarts. So a name maps to a sequence of ids, one per generation, and a
//! run takes the first id the server has not closed.

pub mod jdbc;
mod side_by_side;

pub use side_by_side::{all_or_report, side_by_side};

use anyhow::{Context, Result, bail};
use common::SparkSettings;
use futures::future::try_join_all;
use spark_connect_rs::{SparkSession, SparkSessionBuilder};
use uuid::Uuid;

/// How many closed generations of a named session are skipped before giving up
/// (the server remembers 1000 closed sessions by default).
const MAX_GENERATIONS: u32 = 1000;

/// Opens one Spark Connect session for a run. The `user_id` of the connection names
/// the run, so it can be told apart in the Connect tab of the Spark application UI.
pub async fn connect(spark: &SparkSettings, run_name: &str) -> Result<SparkSession> {
    connect_to_session(spark, run_name, None).await
}

/// Like [`connect`], attaching to the server-side session `session_id` (a UUID) when
/// given. The token (SPARK_CONNECT_TOKEN) goes into the connection string, which is
/// never logged; messages show the endpoint only.
pub async fn connect_to_session(
    spark: &SparkSettings,
    run_name: &str,
    session_id: Option<&str>,
) -> Result<SparkSession> {
    let mut url = session_url(&spark.endpoint(), run_name);
    if let Some(id) = session_id {
        url = format!("{url};session_id={id}");
    }
    if let Some(token) = spark.token()? {
        url = format!("{url};token={}", token.expose());
    }
    SparkSessionBuilder::remote(&url)
        .build()
        .await
        .with_context(|| format!("cannot connect to Spark Connect at {}", spark.endpoint()))
}

/// A clear line for a refused token: the server's own words are terse.
fn refused(e: &impl std::fmt::Display) -> bool {
    let s = e.to_string();
    s.contains("authentication token") || s.contains("Unauthenticated")
}

/// Attaches `clients` connections to the named session `key` (see the module doc).
///
/// Several clients are for operations that must run side by side: spark-connect-rs
/// holds a client's lock until the server answers, and Spark answers a write only
/// when it is done, so operations sharing one client run one after another. The
/// clients share the session (its temporary views and configuration).
///
/// Every operation of this run carries a tag `<run_name>-<random>` (logged), which
/// tells the runs of one session apart in the Spark UI.
pub async fn connect_named(
    spark: &SparkSettings,
    run_name: &str,
    key: &str,
    clients: usize,
) -> Result<Vec<SparkSession>> {
    // The client that found the open generation is the first of the run's clients.
    let first = open_named(spark, run_name, key).await?;
    let session_id = first.session_id().to_string();
    let tag = format!("{run_name}-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut sessions = vec![first];
    sessions.extend(
        try_join_all((1..clients).map(|_| connect_to_session(spark, run_name, Some(&session_id))))
            .await?,
    );
    for s in &mut sessions {
        s.add_tag(&tag)
            .with_context(|| format!("cannot tag the Spark Connect operations with {tag}"))?;
    }
    tracing::info!(session = %session_id, tag = %tag, "Spark Connect session");
    Ok(sessions)
}

/// [`connect_named`] with one client, for jobs that do one thing at a time.
pub async fn connect_named_one(
    spark: &SparkSettings,
    run_name: &str,
    key: &str,
) -> Result<SparkSession> {
    connect_named(spark, run_name, key, 1)
        .await?
        .pop()
        .context("no Spark Connect session")
}

/// The id of generation `generation` of the named session `key`. Generation 0 is the
/// plain UUID v5 of the key, as the stream used before generations existed.
pub fn session_id(key: &str, generation: u32) -> String {
    let name = if generation == 0 {
        key.to_string()
    } else {
        format!("{key}#{generation}")
    };
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// A client on the first generation of `key` the server accepts. A request with an
/// unknown id creates the session, so the probe also opens it.
async fn open_named(settings: &SparkSettings, run_name: &str, key: &str) -> Result<SparkSession> {
    let remote = settings.endpoint();
    for generation in 0..MAX_GENERATIONS {
        let id = session_id(key, generation);
        let spark = connect_to_session(settings, run_name, Some(&id)).await?;
        match spark.version().await {
            Ok(_) => {
                if generation > 0 {
                    tracing::debug!(
                        key,
                        generation,
                        "earlier sessions were closed by the server"
                    );
                }
                return Ok(spark);
            }
            Err(e) if e.to_string().contains("SESSION_CLOSED") => continue,
            Err(e) if refused(&e) => {
                bail!(
                    "the Spark Connect server at {remote} refused this client: it requires a \
                     token and {} is missing or wrong ({e})",
                    SparkSettings::TOKEN_ENV
                );
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot open a Spark Connect session at {remote}"));
            }
        }
    }
    bail!(
        "the Spark Connect server at {remote} has closed {MAX_GENERATIONS} sessions named {key}; restart it"
    )
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

    #[test]
    fn session_ids_are_stable_per_key_and_generation() {
        assert_eq!(session_id("a", 0), session_id("a", 0));
        assert_eq!(
            session_id("sink", 0),
            Uuid::new_v5(&Uuid::NAMESPACE_OID, b"sink").to_string()
        );
        let ids: std::collections::HashSet<_> = (0..50)
            .flat_map(|g| [session_id("a", g), session_id("b", g)])
            .collect();
        assert_eq!(ids.len(), 100);
    }
}
