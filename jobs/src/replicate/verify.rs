//! `jobs replicate --verify-only`: each table's PostgreSQL rows compared with its MySQL
//! replica, copying nothing.
//!
//! The comparison is the copy's own (`fingerprint`: row count and the sum of the
//! canonical rows' hashes, computed inside each database; Spark is not involved). The
//! source is read as of one exported snapshot for all tables, as the copy reads it;
//! each replica through a MySQL transaction with a consistent snapshot, so every query
//! of a table sees one state while `jobs cdc` keeps applying changes. The named table
//! locks are held only while both snapshots are taken (milliseconds): no change-apply
//! commit or `jobs replicate` swap lands between the PostgreSQL snapshot and the MySQL
//! read views, and a running `jobs replicate` is waited for.
//!
//! A table that differs is narrowed down by key: its key range is cut into slices
//! whose fingerprints are compared on both sides (the range pushed into both
//! databases' queries), and the differing slices are cut again, a bounded number of
//! rounds, so a report names the first few differing key ranges.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use common::MysqlSettings;
use common::PostgresSettings;
use common::schema::Table;
use futures::future::{join_all, try_join_all};
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

use crate::fingerprint::{self, Fingerprint, KeyRange, Slices};
use crate::mysql::staging::{LockArgs, TableLocks};
use crate::postgres::Snapshot;
use crate::{Settings, out};

/// Slices a differing range is cut into per round.
const SPLIT: i64 = 16;
/// Differing key ranges a report names per table.
const LISTED: usize = 5;
/// Ranges cut per round (two queries each), and rounds: they bound what a badly
/// differing table costs. 16^8 > 2^32, so eight rounds narrow any INT key to one value.
const CUTS_PER_ROUND: usize = 8;
const ROUNDS: usize = 12;
/// How long a verification session waits for a table's metadata lock (a DDL holding
/// it) while the named locks, and so the change apply, wait behind it.
const METADATA_LOCK_WAIT_SECS: u64 = 10;

pub async fn run(
    settings: &Settings,
    tables: &[&'static Table],
    lock_args: LockArgs,
) -> Result<()> {
    let started = Instant::now();
    // Connected before the locks are taken, so the locked moment is a few statements.
    let mut readers = try_join_all(tables.iter().map(|_| replica_reader(&settings.mysql))).await?;
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let locks = TableLocks::acquire(&settings.mysql, &names, lock_args).await?;
    let locked = Instant::now();
    // The source: the primary, or its standby once it has replayed the primary's
    // position of this moment, so no change the replicas may hold is missing from it.
    let read_pg = settings.postgres_reads.target(&settings.postgres);
    let opened = match settings.postgres_reads.ready(&settings.postgres).await {
        Ok(_) => open_snapshots(&read_pg, &mut readers, tables).await,
        Err(e) => Err(e),
    };
    locks.release().await;
    tracing::debug!(
        "MySQL table locks held {:?} to open the snapshots",
        locked.elapsed()
    );
    let snapshot = opened?;
    let results = join_all(
        tables
            .iter()
            .zip(readers)
            .map(|(t, my)| verify_table(&read_pg, &snapshot, my, t)),
    )
    .await;
    report(tables, results, started)
}

/// A MySQL connection of the verification's own: REPEATABLE READ, so one transaction
/// reads one consistent snapshot; bounded metadata-lock waits.
async fn replica_reader(my: &MysqlSettings) -> Result<MySqlConnection> {
    let mut conn = MySqlConnection::connect_with(&my.connect_options()?)
        .await
        .with_context(|| format!("cannot connect to {}", my.describe()))?;
    for statement in [
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".to_string(),
        format!("SET SESSION lock_wait_timeout = {METADATA_LOCK_WAIT_SECS}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .context("cannot set up a MySQL session for the verification")?;
    }
    Ok(conn)
}

/// The run's PostgreSQL snapshot and every table's MySQL read view, taken while the
/// named locks are held.
async fn open_snapshots(
    pg: &PostgresSettings,
    readers: &mut [MySqlConnection],
    tables: &[&'static Table],
) -> Result<Snapshot> {
    let snapshot = Snapshot::export(pg).await?;
    try_join_all(
        readers
            .iter_mut()
            .zip(tables)
            .map(|(conn, t)| open_read_view(conn, t)),
    )
    .await?;
    Ok(snapshot)
}

async fn open_read_view(conn: &mut MySqlConnection, table: &Table) -> Result<()> {
    sqlx::raw_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .execute(&mut *conn)
        .await
        .context("cannot start a MySQL snapshot transaction")?;
    // Reading the table takes its metadata lock until the transaction ends: no swap
    // can replace the table under the read view (a swap waits, at most
    // MYSQL_SWAP_WAIT_SECS, for this table's verification).
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT 1 FROM `{}` LIMIT 1",
        table.name
    )))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("cannot read MySQL table {}", table.name))?;
    Ok(())
}

#[derive(Debug)]
enum Verdict {
    Equal(Fingerprint),
    Differs {
        source: Fingerprint,
        replica: Fingerprint,
        ranges: Vec<RangeDiff>,
    },
}

async fn verify_table(
    pg: &PostgresSettings,
    snapshot: &Snapshot,
    mut my: MySqlConnection,
    table: &'static Table,
) -> Result<(Verdict, f64)> {
    let started = Instant::now();
    let mut source_conn = snapshot.import(pg).await?;
    let (source, replica) = tokio::try_join!(
        fingerprint::postgres_fingerprint(&mut source_conn, table),
        fingerprint::mysql_fingerprint(&mut my, table, table.name),
    )?;
    let verdict = if source == replica {
        Verdict::Equal(source)
    } else {
        let mut sides = Sides {
            pg: &mut source_conn,
            my: &mut my,
            table,
        };
        let ranges = match key_span(&mut sides).await? {
            Some(range) => {
                let whole = RangeDiff {
                    range,
                    source_rows: source.rows,
                    replica_rows: replica.rows,
                    settled: false,
                };
                differing_ranges(&mut sides, whole).await?
            }
            None => Vec::new(),
        };
        Verdict::Differs {
            source,
            replica,
            ranges,
        }
    };
    // Ends the read view now: a swap of this table waits for it.
    if let Err(e) = my.close().await {
        tracing::debug!(table = table.name, "closing the MySQL session: {e}");
    }
    Ok((verdict, started.elapsed().as_secs_f64()))
}

/// One line per table; an error naming every table that differs or failed.
fn report(
    tables: &[&'static Table],
    results: Vec<Result<(Verdict, f64)>>,
    started: Instant,
) -> Result<()> {
    let mut differ = Vec::new();
    let mut failed = Vec::new();
    for (table, result) in tables.iter().zip(results) {
        match result {
            Ok((Verdict::Equal(fp), seconds)) => {
                tracing::info!(
                    table = table.name,
                    rows = fp.rows,
                    checksum = %fp.checksum,
                    "replica equals its source ({seconds:.2}s)"
                );
                out!(
                    "{:<20} {:>9} rows  verified  {seconds:.2}s",
                    table.name,
                    fp.rows
                );
            }
            Ok((
                Verdict::Differs {
                    source,
                    replica,
                    ranges,
                },
                _,
            )) => {
                let text = describe(table, &source, &replica, &ranges);
                tracing::warn!(
                    table = table.name,
                    source_checksum = %source.checksum,
                    replica_checksum = %replica.checksum,
                    "{text}"
                );
                out!("{:<20} {text}", table.name);
                differ.push(table.name);
            }
            Err(e) => {
                tracing::error!(table = table.name, "verification failed: {e:#}");
                failed.push(format!("{}: {e:#}", table.name));
            }
        }
    }
    let differ_text = format!(
        "{} of {} table(s) differ between PostgreSQL and MySQL: {}",
        differ.len(),
        tables.len(),
        differ.join(", ")
    );
    if !failed.is_empty() {
        let also = if differ.is_empty() {
            String::new()
        } else {
            format!(" ({differ_text})")
        };
        bail!("verification failed for {}{also}", failed.join("; "));
    }
    if !differ.is_empty() {
        bail!("{differ_text}");
    }
    out!(
        "verified {} table(s) in {:.2}s",
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A differing key range: its rows on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RangeDiff {
    range: KeyRange,
    source_rows: i64,
    replica_rows: i64,
    /// Its slices all agreed (only if a side changed while compared): not cut again.
    settled: bool,
}

impl fmt::Display for RangeDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} vs {} rows",
            self.range, self.source_rows, self.replica_rows
        )?;
        if self.source_rows == self.replica_rows {
            write!(f, ", content differs")?;
        }
        write!(f, ")")
    }
}

/// The `differs: ...` text of a table.
fn describe(
    table: &Table,
    source: &Fingerprint,
    replica: &Fingerprint,
    ranges: &[RangeDiff],
) -> String {
    let mut text = format!(
        "differs: rows {} vs {} (PostgreSQL vs MySQL)",
        source.rows, replica.rows
    );
    if source.rows == replica.rows {
        text.push_str(", checksums differ");
    }
    let groups = merged(ranges);
    let named: Vec<String> = groups
        .iter()
        .take(LISTED)
        .map(|g| format!("{} {g}", table.primary_key))
        .collect();
    if named.is_empty() {
        text.push_str("; no differing key range found (did a side change while compared?)");
    } else if groups.len() > LISTED {
        text.push_str(&format!(
            "; first differing key ranges: {}, and more",
            named.join(", ")
        ));
    } else {
        text.push_str(&format!("; differing key ranges: {}", named.join(", ")));
    }
    text
}

/// Both sides' fingerprints of the slices of a key range.
trait SliceSource {
    async fn slices(&mut self, range: KeyRange, width: i64) -> Result<(Slices, Slices)>;
    async fn key_bounds(&mut self) -> Result<[Option<(i64, i64)>; 2]>;
}

/// A table in PostgreSQL (as of the run's snapshot) and in MySQL (its read view).
struct Sides<'a> {
    pg: &'a mut PgConnection,
    my: &'a mut MySqlConnection,
    table: &'static Table,
}

impl SliceSource for Sides<'_> {
    async fn slices(&mut self, range: KeyRange, width: i64) -> Result<(Slices, Slices)> {
        let started = Instant::now();
        let t = self.table;
        let sides = tokio::try_join!(
            fingerprint::postgres_slices(self.pg, t, range, width),
            fingerprint::mysql_slices(&mut *self.my, t, t.name, range, width),
        )?;
        tracing::debug!(
            table = t.name,
            %range,
            width,
            "slices fingerprinted in {:?}",
            started.elapsed()
        );
        Ok(sides)
    }

    async fn key_bounds(&mut self) -> Result<[Option<(i64, i64)>; 2]> {
        let (t, pk) = (self.table.name, self.table.primary_key);
        let source: (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT min({pk})::bigint, max({pk})::bigint FROM {t}"
        )))
        .fetch_one(&mut *self.pg)
        .await
        .with_context(|| format!("cannot read the key range of PostgreSQL table {t}"))?;
        let replica: (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(MIN(`{pk}`) AS SIGNED), CAST(MAX(`{pk}`) AS SIGNED) FROM `{t}`"
        )))
        .fetch_one(&mut *self.my)
        .await
        .with_context(|| format!("cannot read the key range of MySQL table {t}"))?;
        let both = |(lo, hi): (Option<i64>, Option<i64>)| lo.zip(hi);
        Ok([both(source), both(replica)])
    }
}

/// The keys either side holds, from the lowest to the highest.
async fn key_span(sides: &mut impl SliceSource) -> Result<Option<KeyRange>> {
    let bounds = sides.key_bounds().await?;
    let first = bounds.iter().flatten().map(|b| b.0).min();
    let last = bounds.iter().flatten().map(|b| b.1).max();
    Ok(first
        .zip(last)
        .map(|(first, last)| KeyRange { first, last }))
}

/// The differing ranges of `whole`, in key order, cut finer round by round where a
/// report looks (the first `LISTED` groups of adjacent ranges).
async fn differing_ranges(
    sides: &mut impl SliceSource,
    whole: RangeDiff,
) -> Result<Vec<RangeDiff>> {
    let mut ranges = vec![whole];
    for _ in 0..ROUNDS {
        let picked = to_cut(&ranges);
        if picked.is_empty() {
            break;
        }
        let mut next = Vec::with_capacity(ranges.len() + picked.len() * SPLIT as usize);
        for (i, d) in ranges.into_iter().enumerate() {
            if picked.binary_search(&i).is_err() {
                next.push(d);
                continue;
            }
            let parts = cut(sides, &d).await?;
            if parts.is_empty() {
                next.push(RangeDiff { settled: true, ..d });
            } else {
                next.extend(parts);
            }
        }
        ranges = next;
    }
    Ok(ranges)
}

/// The slices of `d` whose fingerprints differ.
async fn cut(sides: &mut impl SliceSource, d: &RangeDiff) -> Result<Vec<RangeDiff>> {
    let width = d.range.slice_width(SPLIT);
    let (source, replica) = sides.slices(d.range, width).await?;
    let indexes: BTreeSet<i64> = source.keys().chain(replica.keys()).copied().collect();
    Ok(indexes
        .into_iter()
        .filter_map(|i| {
            let (s, r) = (source.get(&i), replica.get(&i));
            (s != r).then(|| RangeDiff {
                range: d.range.slice(width, i),
                source_rows: s.map_or(0, |f| f.rows),
                replica_rows: r.map_or(0, |f| f.rows),
                settled: false,
            })
        })
        .collect())
}

/// Indexes (ascending) of the ranges to cut next: wider than one key, in the first
/// `LISTED` groups of adjacent ranges (only those are named), each group's first and
/// last range before its inside (the edges bound what is named; the inside only
/// splits a group), at most `CUTS_PER_ROUND`.
fn to_cut(ranges: &[RangeDiff]) -> Vec<usize> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, d) in ranges.iter().enumerate() {
        let adjacent = i > 0 && ranges[i - 1].range.last + 1 == d.range.first;
        if let (true, Some(g)) = (adjacent, groups.last_mut()) {
            g.push(i);
        } else if groups.len() == LISTED {
            break;
        } else {
            groups.push(vec![i]);
        }
    }
    let edges = groups.iter().flat_map(|g| [g[0], g[g.len() - 1]]);
    let inside = groups.iter().flatten().copied();
    let mut picked: Vec<usize> = Vec::new();
    for i in edges.chain(inside) {
        let d = &ranges[i];
        if d.range.keys() > 1 && !d.settled && !picked.contains(&i) {
            picked.push(i);
            if picked.len() == CUTS_PER_ROUND {
                break;
            }
        }
    }
    picked.sort_unstable();
    picked
}

/// Adjacent ranges joined, their rows summed: the ranges a report names.
fn merged(ranges: &[RangeDiff]) -> Vec<RangeDiff> {
    let mut out: Vec<RangeDiff> = Vec::new();
    for d in ranges {
        match out.last_mut() {
            Some(g) if g.range.last + 1 == d.range.first => {
                g.range.last = d.range.last;
                g.source_rows += d.source_rows;
                g.replica_rows += d.replica_rows;
            }
            _ => out.push(d.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Two tables in memory (key → row text), fingerprinted like the databases do:
    /// count, and a sum of per-row hashes.
    struct Fake {
        source: BTreeMap<i64, String>,
        replica: BTreeMap<i64, String>,
        queries: usize,
    }

    fn slices_of(rows: &BTreeMap<i64, String>, range: KeyRange, width: i64) -> Slices {
        let mut out: BTreeMap<i64, (i64, u128)> = BTreeMap::new();
        for (k, v) in rows.range(range.first..=range.last) {
            let e = out.entry((k - range.first) / width).or_default();
            e.0 += 1;
            // Any hash that tells the test's rows apart will do.
            e.1 += v.bytes().fold(*k as u128 * 1_000_003, |h, b| {
                h.wrapping_mul(31).wrapping_add(b as u128) % (1 << 60)
            });
        }
        out.into_iter()
            .map(|(i, (rows, sum))| {
                (
                    i,
                    Fingerprint {
                        rows,
                        checksum: sum.to_string(),
                    },
                )
            })
            .collect()
    }

    impl SliceSource for Fake {
        async fn slices(&mut self, range: KeyRange, width: i64) -> Result<(Slices, Slices)> {
            self.queries += 1;
            Ok((
                slices_of(&self.source, range, width),
                slices_of(&self.replica, range, width),
            ))
        }

        async fn key_bounds(&mut self) -> Result<[Option<(i64, i64)>; 2]> {
            let b = |m: &BTreeMap<i64, String>| {
                m.keys().next().copied().zip(m.keys().next_back().copied())
            };
            Ok([b(&self.source), b(&self.replica)])
        }
    }

    fn table(keys: impl IntoIterator<Item = i64>) -> BTreeMap<i64, String> {
        keys.into_iter().map(|k| (k, format!("row {k}"))).collect()
    }

    /// The report's text for the two tables, and the slice queries it took.
    fn compare(source: BTreeMap<i64, String>, replica: BTreeMap<i64, String>) -> (String, usize) {
        let t = common::schema::table("orders").expect("orders");
        let fp = |m: &BTreeMap<i64, String>| Fingerprint {
            rows: m.len() as i64,
            checksum: String::new(),
        };
        let (s, r) = (fp(&source), fp(&replica));
        let mut fake = Fake {
            source,
            replica,
            queries: 0,
        };
        let ranges = futures::executor::block_on(async {
            let range = key_span(&mut fake).await?.expect("rows");
            let whole = RangeDiff {
                range,
                source_rows: s.rows,
                replica_rows: r.rows,
                settled: false,
            };
            differing_ranges(&mut fake, whole).await
        })
        .expect("compare");
        (describe(t, &s, &r, &ranges), fake.queries)
    }

    #[test]
    fn rows_missing_at_the_end_are_one_exact_range() {
        let (text, _) = compare(table(1..=10_025), table(1..=10_000));
        assert_eq!(
            text,
            "differs: rows 10025 vs 10000 (PostgreSQL vs MySQL); differing key ranges: \
             order_id 10001..10025 (25 vs 0 rows)"
        );
    }

    #[test]
    fn an_update_a_delete_and_a_far_insert_are_each_named_exactly() {
        let source = table(1..=5000);
        let mut replica = source.clone();
        replica.insert(17, "changed".into());
        replica.remove(&2500);
        replica.insert(2_000_000_000, "extra".into());
        let (text, queries) = compare(source, replica);
        assert_eq!(
            text,
            "differs: rows 5000 vs 5000 (PostgreSQL vs MySQL), checksums differ; differing key \
             ranges: order_id 17 (1 vs 1 rows, content differs), order_id 2500 (1 vs 0 rows), \
             order_id 2000000000 (0 vs 1 rows)"
        );
        assert!(queries <= 1 + ROUNDS * CUTS_PER_ROUND, "{queries} queries");
    }

    #[test]
    fn scattered_differences_name_the_first_five_and_say_there_are_more() {
        let source = table(1..=10_000);
        let mut replica = source.clone();
        for k in (100..=10_000).step_by(100) {
            replica.insert(k, "stale".into());
        }
        let (text, _) = compare(source, replica);
        assert!(
            text.ends_with(
                "first differing key ranges: order_id 100 (1 vs 1 rows, content differs), \
                 order_id 200 (1 vs 1 rows, content differs), order_id 300 (1 vs 1 rows, content \
                 differs), order_id 400 (1 vs 1 rows, content differs), order_id 500 (1 vs 1 \
                 rows, content differs), and more"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_replica_is_one_range_in_a_bounded_number_of_queries() {
        let (text, queries) = compare(table(1..=40_000), BTreeMap::new());
        assert!(
            text.ends_with("differing key ranges: order_id 1..40000 (40000 vs 0 rows)"),
            "{text}"
        );
        assert!(queries <= ROUNDS * CUTS_PER_ROUND, "{queries} queries");
    }

    #[test]
    fn groups_past_the_named_ones_are_not_cut() {
        let r = |first, last| RangeDiff {
            range: KeyRange { first, last },
            source_rows: 1,
            replica_rows: 0,
            settled: false,
        };
        // Seven separate ranges: only the first five groups are cut.
        let ranges: Vec<RangeDiff> = (0..7).map(|i| r(i * 100, i * 100 + 9)).collect();
        assert_eq!(to_cut(&ranges), vec![0, 1, 2, 3, 4]);
        // One group of ten adjacent ranges: its edges come first.
        let ranges: Vec<RangeDiff> = (0..10).map(|i| r(i * 10, i * 10 + 9)).collect();
        let picked = to_cut(&ranges);
        assert_eq!(picked.len(), CUTS_PER_ROUND);
        assert!(picked.contains(&0) && picked.contains(&9), "{picked:?}");
    }
}
