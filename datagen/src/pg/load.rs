//! Loading into PostgreSQL: one transaction, COPY per table, identity sequences moved
//! past the explicit ids so later inserts (the stream writes users) do not collide.

use std::time::{Duration, Instant};

use common::SettingsError;
use common::schema::TABLES;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres, Transaction};

use super::args::PgArgs;
use super::copy::{TableCopy, encode_all};
use super::generate::{VolumeError, Volumes, generate};
use crate::progress::ProgressSink;
use crate::shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("bad setting: {0}")]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Volumes(#[from] VolumeError),
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to {target}: no answer within {secs} s")]
    ConnectTimeout { target: String, secs: u64 },
    #[error("table(s) {tables} missing in {target}: create them with infra/db/postgres/schema.sql")]
    MissingTables { target: String, tables: String },
    #[error("{what} failed on {target}; nothing was written: {source}")]
    Query {
        what: String,
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("generating the data set failed: {0}")]
    Generate(String),
    #[error("cancelled before the commit; nothing was written")]
    Cancelled,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tables already held data: nothing was changed. Row counts per table.
    AlreadyPopulated(Vec<(&'static str, i64)>),
    /// The data set was loaded: rows per table and the wall time of the whole run.
    Loaded {
        tables: Vec<(&'static str, usize)>,
        elapsed: Duration,
    },
}

impl Outcome {
    pub fn rows(&self) -> usize {
        match self {
            Outcome::AlreadyPopulated(_) => 0,
            Outcome::Loaded { tables, .. } => tables.iter().map(|(_, n)| n).sum(),
        }
    }
}

struct Ctx {
    target: String,
}

impl Ctx {
    fn query(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PgError + '_ {
        let what = what.into();
        move |source| PgError::Query {
            what,
            target: self.target.clone(),
            source,
        }
    }
}

/// Runs `datagen pg`: fills the five tables unless they already hold data (`--reset`
/// empties and refills them), all in one transaction. `cancel` rolls it back (checked
/// between COPY chunks and before the commit); `progress` hears of each table (a
/// stage), the rows sent, and all of them acknowledged at the commit.
pub async fn run(
    args: &PgArgs,
    cancel: &Shutdown,
    progress: &dyn ProgressSink,
) -> Result<Outcome, PgError> {
    let started = Instant::now();
    let options = args.postgres.connect_options()?;
    let volumes = Volumes::from(args.volumes);
    volumes.check()?;
    let ctx = Ctx {
        target: format!(
            "{} (schema {})",
            args.postgres.describe(),
            args.postgres.schema
        ),
    };
    let as_of = args
        .as_of
        .unwrap_or_else(|| chrono::Utc::now().date_naive());

    // Generate on a second core while connecting and checking the tables.
    let seed = args.seed;
    let generated = tokio::task::spawn_blocking(move || {
        generate(&volumes, seed, as_of).map(|data| encode_all(&data))
    });

    let secs = args.connect_timeout_secs;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(secs),
        PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| PgError::ConnectTimeout {
        target: ctx.target.clone(),
        secs,
    })?
    .map_err(|source| PgError::Connect {
        target: ctx.target.clone(),
        source,
    })?;

    let n = super::nodelay::set_on_tcp_sockets();
    tracing::debug!("TCP_NODELAY set on {n} socket(s)");

    let mut tx = conn.begin().await.map_err(ctx.query("BEGIN"))?;
    check_tables(&mut tx, &ctx).await?;
    if args.reset {
        // Table names are the schema's constants, not user input.
        sqlx::query(AssertSqlSafe(format!(
            "TRUNCATE {} RESTART IDENTITY CASCADE",
            table_list()
        )))
        .execute(&mut *tx)
        .await
        .map_err(ctx.query("TRUNCATE"))?;
        tracing::info!("--reset: emptied {}", table_list());
    } else {
        // Concurrent runs wait here; readers are not blocked.
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            table_list()
        )))
        .execute(&mut *tx)
        .await
        .map_err(ctx.query("LOCK TABLE"))?;
        let counts = count_rows(&mut tx, &ctx).await?;
        if counts.iter().any(|&(_, n)| n > 0) {
            tx.rollback().await.map_err(ctx.query("ROLLBACK"))?;
            return Ok(Outcome::AlreadyPopulated(counts));
        }
    }

    tracing::debug!(
        "connected and checked after {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let tables = generated
        .await
        .map_err(|e| PgError::Generate(e.to_string()))??;
    tracing::debug!(
        "data set generated after {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // Bulk-load practice from the PostgreSQL manual ("Populating a Database"): drop
    // the foreign keys, load, add them back. Adding a key checks every row in one
    // join instead of one locking lookup per row, and it all happens inside this
    // transaction, so nobody sees the tables without their keys.
    let foreign_keys = ForeignKeys::load(&mut tx, &ctx).await?;
    foreign_keys.drop(&mut tx, &ctx).await?;
    for t in &tables {
        copy_table(&mut tx, &ctx, cancel, progress, t).await?;
    }
    let keys_started = Instant::now();
    foreign_keys.restore(&mut tx, &ctx).await?;
    set_sequences(&mut tx, &ctx, &tables).await?;
    tracing::debug!(
        "foreign keys checked in {:.0} ms",
        keys_started.elapsed().as_secs_f64() * 1e3
    );
    if cancel.is_requested() {
        return Err(PgError::Cancelled);
    }
    let commit_started = Instant::now();
    tx.commit().await.map_err(ctx.query("COMMIT"))?;
    progress.acked(tables.iter().map(|t| t.rows as u64).sum());
    tracing::debug!(
        "committed in {:.0} ms",
        commit_started.elapsed().as_secs_f64() * 1e3
    );
    Ok(Outcome::Loaded {
        tables: tables.iter().map(|t| (t.table, t.rows)).collect(),
        elapsed: started.elapsed(),
    })
}

/// The foreign keys declared on the five tables, as `ALTER TABLE` statements that the
/// server writes from its catalog (names quoted, definitions verbatim).
struct ForeignKeys {
    drops: Vec<String>,
    adds: Vec<String>,
}

impl ForeignKeys {
    async fn load(tx: &mut Transaction<'_, Postgres>, ctx: &Ctx) -> Result<Self, PgError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
                    format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, \
                           pg_get_constraintdef(oid)) \
             FROM pg_constraint \
             WHERE contype = 'f' AND conrelid = ANY($1::text[]::regclass[]) \
             ORDER BY conrelid, conname",
        )
        .bind(TABLES.map(|t| t.name).as_slice())
        .fetch_all(&mut **tx)
        .await
        .map_err(ctx.query("reading the foreign keys"))?;
        let (drops, adds) = rows.into_iter().unzip();
        Ok(Self { drops, adds })
    }

    async fn drop(&self, tx: &mut Transaction<'_, Postgres>, ctx: &Ctx) -> Result<(), PgError> {
        Self::execute(
            tx,
            &self.drops,
            ctx,
            "dropping the foreign keys for the load",
        )
        .await
    }

    async fn restore(&self, tx: &mut Transaction<'_, Postgres>, ctx: &Ctx) -> Result<(), PgError> {
        Self::execute(
            tx,
            &self.adds,
            ctx,
            "adding back (and checking) the foreign keys",
        )
        .await
    }

    async fn execute(
        tx: &mut Transaction<'_, Postgres>,
        statements: &[String],
        ctx: &Ctx,
        what: &str,
    ) -> Result<(), PgError> {
        if statements.is_empty() {
            return Ok(());
        }
        // Written by the server from its own catalog: no user input in it.
        sqlx::raw_sql(AssertSqlSafe(statements.join(";\n")))
            .execute(&mut **tx)
            .await
            .map_err(ctx.query(what))?;
        Ok(())
    }
}

fn table_list() -> String {
    TABLES.map(|t| t.name).join(", ")
}

async fn check_tables(tx: &mut Transaction<'_, Postgres>, ctx: &Ctx) -> Result<(), PgError> {
    // The connection's search_path is the configured schema, so bare names resolve there.
    let missing: Vec<String> =
        sqlx::query_scalar("SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL")
            .bind(TABLES.map(|t| t.name).as_slice())
            .fetch_all(&mut **tx)
            .await
            .map_err(ctx.query("checking the tables"))?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PgError::MissingTables {
            target: ctx.target.clone(),
            tables: missing.join(", "),
        })
    }
}

async fn count_rows(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &Ctx,
) -> Result<Vec<(&'static str, i64)>, PgError> {
    let sql = TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {})", t.name))
        .collect::<Vec<_>>()
        .join(", ");
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(AssertSqlSafe(format!("SELECT {sql}")))
        .fetch_one(&mut **tx)
        .await
        .map_err(ctx.query("counting rows"))?;
    Ok(TABLES
        .map(|t| t.name)
        .into_iter()
        .zip([row.0, row.1, row.2, row.3, row.4])
        .collect())
}

async fn copy_table(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &Ctx,
    cancel: &Shutdown,
    progress: &dyn ProgressSink,
    t: &TableCopy,
) -> Result<(), PgError> {
    let started = Instant::now();
    progress.stage(t.table, Some(t.rows as u64));
    let what = || format!("COPY into {}", t.table);
    let mut copy = tx
        .copy_in_raw(&t.statement())
        .await
        .map_err(ctx.query(what()))?;
    for (rows, chunk) in &t.chunks {
        if cancel.is_requested() {
            // Dropping the COPY and the transaction rolls both back.
            return Err(PgError::Cancelled);
        }
        copy.send(chunk.as_bytes())
            .await
            .map_err(ctx.query(what()))?;
        progress.sent(*rows as u64);
    }
    let n = copy.finish().await.map_err(ctx.query(what()))?;
    tracing::debug!(
        "{}: {n} rows in {:.0} ms",
        t.table,
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// Moves each identity sequence past the explicit ids (ids are 1..=rows).
async fn set_sequences(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &Ctx,
    tables: &[TableCopy],
) -> Result<(), PgError> {
    let calls = tables
        .iter()
        .map(|t| {
            format!(
                "setval(pg_get_serial_sequence('{}', '{}'), {}, {})",
                t.table,
                t.primary_key,
                t.rows.max(1),
                t.rows > 0
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(AssertSqlSafe(format!("SELECT {calls}")))
        .execute(&mut **tx)
        .await
        .map_err(ctx.query("setting the identity sequences"))?;
    Ok(())
}
