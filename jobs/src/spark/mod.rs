//! Spark Connect sessions, through the official Rust client (`apache-spark-connect`).
//!
//! The client is blocking (it drives its own runtime): every call that talks to the
//! server runs on tokio's blocking pool through [`blocking`], so the async database
//! and Kafka work of the jobs never waits on it. A session is `Send + Sync` and holds
//! no lock across a request, so the concurrent parts of a run (tables, marts) share
//! one session, each from its own blocking thread, and run side by side.
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
pub mod kafka;
pub mod shutdown;
mod side_by_side;
pub mod streaming;

pub use side_by_side::{all_or_report, side_by_side};
pub use spark_connect::row::Value;
pub use spark_connect::{DataFrame, SparkSession};

use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::SparkSettings;
use spark_connect::SparkSessionBuilder;
use uuid::Uuid;

/// How many closed generations of a named session are skipped before giving up
/// (the server remembers 1000 closed sessions by default).
const MAX_GENERATIONS: u32 = 1000;

/// How long the server may take to accept a connection before a job gives up. The
/// client itself retries an unreachable server for about ten minutes, so the jobs
/// look first and fail in seconds with a clear line.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a call of the (blocking) client on tokio's blocking pool.
pub async fn blocking<T, F>(call: F) -> Result<T>
where
    F: FnOnce() -> spark_connect::Result<T> + Send + 'static,
    T: Send + 'static,
{
    Ok(blocking_raw(call).await??)
}

/// [`blocking`], keeping the client's own error for callers that tell its kinds apart.
async fn blocking_raw<T, F>(call: F) -> Result<spark_connect::Result<T>>
where
    F: FnOnce() -> spark_connect::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(call)
        .await
        .context("a Spark Connect call panicked")
}

/// Opens a fresh Spark Connect session (a new server-side session) for a run.
pub async fn connect(spark: &SparkSettings, run_name: &str) -> Result<SparkSession> {
    let session = connect_to_session(spark, &new_session_id()).await?;
    tag(&session, run_name).await?;
    Ok(session)
}

/// A client attached to the server-side session `session_id` (a UUID v4; the server
/// creates it on first use). The token (SPARK_CONNECT_TOKEN) goes into the connection
/// string, which is never logged; messages show the endpoint only.
pub async fn connect_to_session(spark: &SparkSettings, session_id: &str) -> Result<SparkSession> {
    let endpoint = spark.endpoint();
    reachable(&endpoint).await?;
    let url = session_url(&endpoint, session_id, spark.token()?.as_ref())?;
    blocking(move || SparkSessionBuilder::new().remote(&url).get_or_create())
        .await
        .with_context(|| format!("cannot connect to Spark Connect at {endpoint}"))
}

/// Attaches to the named session `key` (see the module doc). Every operation of this
/// run carries a tag `<run_name>-<random>` (logged), which tells the runs of one
/// session apart in the Spark UI. Clone the session for operations that run side by
/// side.
pub async fn connect_named(
    spark: &SparkSettings,
    run_name: &str,
    key: &str,
) -> Result<SparkSession> {
    let session = open_named(spark, key).await?;
    let run = tag(&session, run_name).await?;
    tracing::info!(session = %session.session_id(), tag = %run, "Spark Connect session");
    Ok(session)
}

/// Tags the session's operations with `<run_name>-<random>`; returns the tag.
async fn tag(session: &SparkSession, run_name: &str) -> Result<String> {
    let tag = format!("{run_name}-{}", &Uuid::new_v4().simple().to_string()[..12]);
    let (s, t) = (session.clone(), tag.clone());
    blocking(move || s.add_tag(&t))
        .await
        .with_context(|| format!("cannot tag the Spark Connect operations with {tag}"))?;
    Ok(tag)
}

/// A streaming query's checkpoint directory: `explicit` (a job's flag), else the
/// Connect server's `spark.sql.streaming.checkpointLocation` / `sub`. `setting` names
/// the job's variable for the error when neither exists.
pub async fn checkpoint_dir(
    spark: &SparkSession,
    explicit: Option<&str>,
    sub: &str,
    setting: &str,
) -> Result<String> {
    if let Some(dir) = explicit {
        return Ok(dir.trim_end_matches('/').to_string());
    }
    let s = spark.clone();
    let base = blocking(move || s.conf().get("spark.sql.streaming.checkpointLocation"))
        .await
        .context("cannot read the Connect server's checkpoint location")?
        .unwrap_or_default();
    if base.is_empty() {
        bail!(
            "the Spark Connect server has no spark.sql.streaming.checkpointLocation: set \
             {setting}"
        );
    }
    Ok(format!("{}/{sub}", base.trim_end_matches('/')))
}

/// The id of generation `generation` of the named session `key`: deterministic, and
/// shaped as a UUID v4, the only kind the client accepts (the bits of a name-based
/// UUID v5, with the version and variant of a v4).
pub fn session_id(key: &str, generation: u32) -> String {
    let name = if generation == 0 {
        key.to_string()
    } else {
        format!("{key}#{generation}")
    };
    let v5 = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes());
    uuid::Builder::from_random_bytes(*v5.as_bytes())
        .into_uuid()
        .to_string()
}

fn new_session_id() -> String {
    Uuid::new_v4().to_string()
}

/// A client on the first generation of `key` the server accepts. A request with an
/// unknown id creates the session, so the probe also opens it.
async fn open_named(settings: &SparkSettings, key: &str) -> Result<SparkSession> {
    let remote = settings.endpoint();
    for generation in 0..MAX_GENERATIONS {
        let session = connect_to_session(settings, &session_id(key, generation)).await?;
        let probe = session.clone();
        match blocking_raw(move || probe.version()).await? {
            Ok(_) => {
                if generation > 0 {
                    tracing::debug!(
                        key,
                        generation,
                        "earlier sessions were closed by the server"
                    );
                }
                return Ok(session);
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

/// The server's answer to a missing or wrong token (gRPC UNAUTHENTICATED).
fn refused(e: &spark_connect::SparkError) -> bool {
    e.grpc_code() == Some(16) || e.to_string().contains("authentication token")
}

/// Fails fast, with the endpoint in the message, when nothing accepts connections
/// there.
async fn reachable(endpoint: &str) -> Result<()> {
    let (_, addr) = host_and_port(endpoint);
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("cannot connect to Spark Connect at {endpoint}: {e}"),
        Err(_) => bail!(
            "cannot connect to Spark Connect at {endpoint}: no answer within {}s",
            REACH_TIMEOUT.as_secs()
        ),
    }
}

/// The host of an `sc://host[:port]` endpoint (an IPv6 host keeps its brackets) and
/// the `host:port` to connect to (Spark Connect's port 15002 when none is given).
fn host_and_port(endpoint: &str) -> (&str, String) {
    let authority = endpoint
        .strip_prefix("sc://")
        .unwrap_or(endpoint)
        .split(['/', ';'])
        .next()
        .unwrap_or_default();
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    let port = rest
        .strip_prefix(':')
        .filter(|p| !p.is_empty())
        .unwrap_or("15002");
    (host, format!("{host}:{port}"))
}

/// The connection string: `sc://host:port/;session_id=...` plus the token. The client
/// sends a `token` as `authorization: Bearer <token>` but refuses to, without TLS, to
/// any host but the local one; the Spark Connect server speaks no TLS, and in the
/// docker deployment it is reached by name on the compose network. For such a host
/// the job sends the same header itself (any other parameter becomes a gRPC header).
/// No `user_id`: this client sends it with some requests and not with others, and the
/// server keys sessions by user and id, so it would split one run over two sessions;
/// runs are named by their tag instead.
fn session_url(endpoint: &str, session_id: &str, token: Option<&common::Secret>) -> Result<String> {
    let base = endpoint.trim_end_matches('/');
    if base.contains("/;") {
        bail!("SPARK_REMOTE must be sc://host:port; the token goes in SPARK_CONNECT_TOKEN");
    }
    let mut url = format!("{base}/;session_id={session_id}");
    if let Some(token) = token {
        let (host, _) = host_and_port(base);
        if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            url.push_str(&format!(";token={}", token.expose()));
        } else {
            url.push_str(&format!(";authorization=Bearer%20{}", token.expose()));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_as_the_client_expects() {
        let t = common::Secret::new("abc");
        assert_eq!(
            session_url("sc://localhost:15002", "id", Some(&t)).expect("url"),
            "sc://localhost:15002/;session_id=id;token=abc"
        );
        assert_eq!(
            session_url("sc://spark-connect:15002/", "id", Some(&t)).expect("url"),
            "sc://spark-connect:15002/;session_id=id;authorization=Bearer%20abc"
        );
        assert_eq!(
            session_url("sc://h:1", "id", None).expect("url"),
            "sc://h:1/;session_id=id"
        );
        assert_eq!(
            session_url("sc://[::1]:15002", "id", Some(&t)).expect("url"),
            "sc://[::1]:15002/;session_id=id;token=abc"
        );
        assert!(session_url("sc://h:1/;user_id=x", "id", None).is_err());
    }

    #[test]
    fn endpoints_give_their_host_and_address() {
        let hp = |e: &str| {
            let (h, a) = host_and_port(e);
            (h.to_string(), a)
        };
        assert_eq!(
            hp("sc://localhost:15002"),
            ("localhost".into(), "localhost:15002".into())
        );
        assert_eq!(
            hp("sc://spark-connect/"),
            ("spark-connect".into(), "spark-connect:15002".into())
        );
        assert_eq!(
            hp("sc://[::1]:1234/;x=y"),
            ("[::1]".into(), "[::1]:1234".into())
        );
        assert_eq!(hp("sc://[::1]"), ("[::1]".into(), "[::1]:15002".into()));
    }

    #[test]
    fn session_ids_are_stable_v4_shaped_and_distinct() {
        assert_eq!(session_id("a", 0), session_id("a", 0));
        let id = Uuid::parse_str(&session_id("sink", 0)).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
        let ids: std::collections::HashSet<_> = (0..50)
            .flat_map(|g| [session_id("a", g), session_id("b", g)])
            .collect();
        assert_eq!(ids.len(), 100);
    }
}
