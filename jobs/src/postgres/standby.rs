//! Where the batch jobs read PostgreSQL: the primary, or its hot standby (streaming
//! replication, `infra/local` and compose's `postgres-standby`), so that the heavy
//! reads of `jobs replicate` and its verification do not load the primary that the
//! stream and the applications write to.
//!
//! A standby may lag. Before a run reads it, [`ReadSettings::ready`] takes the
//! primary's WAL write position (`pg_current_wal_lsn`) and waits until the standby has
//! replayed at least that far (`pg_last_wal_replay_lsn`), at most
//! `POSTGRES_STANDBY_MAX_LAG_SECS`. Every transaction committed on the primary before
//! that moment (its commit record flushed, so at or below the write position) is then
//! visible on the standby, and the run's exported snapshot, taken afterwards on the
//! standby, holds it: a copy is never older than the run's start. A standby that is
//! down, lags beyond the bound, was promoted, or follows another cluster fails the
//! run with one line saying which; nothing falls back to the primary silently.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::PostgresSettings;
use sqlx::{Connection, PgConnection};

/// Which server the batch reads go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFrom {
    Primary,
    Standby,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReadSettings {
    /// Where `jobs replicate` (and --verify-only) read PostgreSQL: the primary, or its
    /// hot standby (POSTGRES_STANDBY_HOST:POSTGRES_STANDBY_PORT)
    #[arg(
        id = "pg-read-from",
        long = "pg-read-from",
        env = "POSTGRES_READ_FROM",
        value_enum,
        default_value_t = ReadFrom::Primary
    )]
    pub read_from: ReadFrom,
    /// Host of the PostgreSQL hot standby (default: the primary's host)
    #[arg(
        id = "pg-standby-host",
        long = "pg-standby-host",
        env = "POSTGRES_STANDBY_HOST"
    )]
    pub standby_host: Option<String>,
    /// Port of the PostgreSQL hot standby
    #[arg(
        id = "pg-standby-port",
        long = "pg-standby-port",
        env = "POSTGRES_STANDBY_PORT",
        default_value_t = 5433
    )]
    pub standby_port: u16,
    /// How long a run waits for the standby to replay what the primary had written
    /// when the run started; beyond that the run fails, saying so
    #[arg(
        id = "pg-standby-max-lag-secs",
        long = "pg-standby-max-lag-secs",
        env = "POSTGRES_STANDBY_MAX_LAG_SECS",
        default_value_t = 30
    )]
    pub max_lag_secs: u64,
}

/// How long connecting to either server may take before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a run polls the standby's replay position while it waits.
const POLL: Duration = Duration::from_millis(20);

/// How far the standby was when the run could start reading it.
#[derive(Debug, Clone)]
pub struct CaughtUp {
    /// The primary's write position when the run started.
    pub target: String,
    /// The standby's replay position once it had reached `target`.
    pub replayed: String,
    pub waited: Duration,
}

impl ReadSettings {
    /// The server the reads go to: the primary's settings, or the same database, user
    /// and schema on the standby. Pure: says nothing about whether it is usable.
    pub fn target(&self, primary: &PostgresSettings) -> PostgresSettings {
        match self.read_from {
            ReadFrom::Primary => primary.clone(),
            ReadFrom::Standby => PostgresSettings {
                host: self
                    .standby_host
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| primary.host.clone()),
                port: self.standby_port,
                ..primary.clone()
            },
        }
    }

    /// Makes sure the reads may start now: nothing to do on the primary; on the
    /// standby, that it is one (in recovery), of this primary, and has replayed the
    /// primary's current write position (waiting up to the bound). `None` for the
    /// primary.
    pub async fn ready(&self, primary: &PostgresSettings) -> Result<Option<CaughtUp>> {
        if self.read_from == ReadFrom::Primary {
            return Ok(None);
        }
        let standby = self.target(primary);
        let where_ = format!("the PostgreSQL standby {}:{}", standby.host, standby.port);
        let mut sconn = connect(&standby).await.with_context(|| {
            format!(
                "{where_} is not reachable: start it (make up), rebuild it (make standby-rebuild), \
                 or read the primary (POSTGRES_READ_FROM=primary)"
            )
        })?;
        let mut pconn = connect(primary).await?;
        let (target, primary_id): (String, i64) = sqlx::query_as(
            "SELECT pg_current_wal_lsn()::text, (SELECT system_identifier FROM pg_control_system())",
        )
        .fetch_one(&mut pconn)
        .await
        .with_context(|| format!("cannot read the WAL position of {}", primary.describe()))?;
        pconn.close().await.ok();
        let (in_recovery, standby_id): (bool, i64) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())",
        )
        .fetch_one(&mut sconn)
        .await
        .with_context(|| format!("cannot query {where_}"))?;
        if !in_recovery {
            bail!(
                "{where_} is not in recovery (promoted?): it no longer follows the primary; \
                 rebuild it (make standby-rebuild) or read the primary (POSTGRES_READ_FROM=primary)"
            );
        }
        if standby_id != primary_id {
            bail!(
                "{where_} is a standby of another cluster (system identifier {standby_id}, the \
                 primary {}:{} has {primary_id}); rebuild it (make standby-rebuild)",
                primary.host,
                primary.port
            );
        }
        let started = Instant::now();
        let bound = Duration::from_secs(self.max_lag_secs);
        loop {
            let (reached, replayed): (bool, Option<String>) = sqlx::query_as(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), \
                        pg_last_wal_replay_lsn()::text",
            )
            .bind(&target)
            .fetch_one(&mut sconn)
            .await
            .with_context(|| format!("cannot read the replay position of {where_}"))?;
            let replayed = replayed.unwrap_or_else(|| "nothing".into());
            if reached {
                let caught = CaughtUp {
                    target,
                    replayed,
                    waited: started.elapsed(),
                };
                tracing::info!(
                    standby = %standby.describe(),
                    primary_lsn = %caught.target,
                    replayed_lsn = %caught.replayed,
                    "reading PostgreSQL from the standby, which has replayed the primary's \
                     position at the run's start (waited {} ms)",
                    caught.waited.as_millis()
                );
                sconn.close().await.ok();
                return Ok(Some(caught));
            }
            if started.elapsed() >= bound {
                bail!(
                    "{where_} lags: it has replayed up to {replayed}, the primary was at {target} \
                     when the run started; waited {}s (POSTGRES_STANDBY_MAX_LAG_SECS); see \
                     `make status`, rebuild it (make standby-rebuild) or read the primary \
                     (POSTGRES_READ_FROM=primary)",
                    self.max_lag_secs
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn connect(pg: &PostgresSettings) -> Result<PgConnection> {
    let options = pg.connect_options()?;
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot connect to {}", pg.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> PostgresSettings {
        PostgresSettings {
            host: "db".into(),
            port: 5432,
            database: "d".into(),
            schema: "s".into(),
            user: "u".into(),
        }
    }

    fn reads(read_from: ReadFrom, host: Option<&str>) -> ReadSettings {
        ReadSettings {
            read_from,
            standby_host: host.map(str::to_string),
            standby_port: 5433,
            max_lag_secs: 30,
        }
    }

    #[test]
    fn the_primary_is_read_unless_the_standby_is_chosen() {
        let t = reads(ReadFrom::Primary, Some("replica")).target(&primary());
        assert_eq!((t.host.as_str(), t.port), ("db", 5432));
    }

    #[test]
    fn the_standby_is_the_same_database_on_its_own_host_and_port() {
        let t = reads(ReadFrom::Standby, Some("replica")).target(&primary());
        assert_eq!((t.host.as_str(), t.port), ("replica", 5433));
        assert_eq!((t.database.as_str(), t.schema.as_str()), ("d", "s"));
        assert_eq!(t.user, "u");
        // Without a host of its own (or an empty one), the primary's host.
        for host in [None, Some("")] {
            let t = reads(ReadFrom::Standby, host).target(&primary());
            assert_eq!((t.host.as_str(), t.port), ("db", 5433));
        }
    }
}
