//! `jobs replicate --verify-only` against the local stack: it passes on a fresh copy,
//! fails naming the table and a key range holding each row changed behind the copy's
//! back (updated, deleted, inserted directly in MySQL), and passes again once
//! `jobs replicate` has reloaded the table. Needs the default data set (`datagen pg`).
//!
//! Other tests, `datagen changes` and a `jobs cdc` left running write the same databases
//! meanwhile, so the test changes `product_categories`, which they at most append to, at
//! keys far from theirs, and repeats a step whose premise another process destroyed:
//! a reload makes a running `jobs cdc` replay the table's change topic over the replica
//! at its next change event, whenever that comes, which restores the rows the test
//! changed (see each step).

mod support;

use sqlx::{AssertSqlSafe, MySqlPool};

const TABLE: &str = "product_categories";
const KEY: &str = "category_id";
/// Far above any key PostgreSQL's sequence hands out during the tests.
const EXTRA_KEY: i64 = 2_000_000_000;
const MARK: &str = " (changed in the replica)";

/// Reloads the replica when dropped, so a failed run leaves it equal to its source.
struct Restore {
    armed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.armed {
            let (out, stdout, stderr) = support::run(&["replicate", "--table", TABLE]);
            if !out.status.success() {
                eprintln!("could not restore the replica of {TABLE}:\n{stdout}\n{stderr}");
            }
        }
    }
}

/// `jobs replicate --table TABLE`, then `--verify-only` must pass; returns its stdout.
/// A writer of the source that no change apply follows (another test) can move the
/// source on between the two runs, and a replay in several batches can be caught
/// midway, so a failed verification is retried after a new reload, three times at most.
fn reload_then_verify() -> String {
    let mut failures = Vec::new();
    for _ in 0..3 {
        support::run_ok(&["replicate", "--table", TABLE]);
        let (out, stdout, stderr) = support::run(&["replicate", "--verify-only", "--table", TABLE]);
        if out.status.success() {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(TABLE))
                .unwrap_or_else(|| panic!("no line for {TABLE}: {stdout}"));
            assert!(line.contains(" rows  verified"), "{line}");
            assert!(
                stdout.contains("verified 1 table(s)"),
                "no summary line: {stdout}"
            );
            return stdout;
        }
        eprintln!("verification after a reload failed, reloading again:\n{stdout}\n{stderr}");
        failures.push(format!("{stdout}\n{stderr}"));
    }
    panic!(
        "--verify-only failed after each of 3 reloads:\n{}",
        failures.join("\n---\n")
    );
}

/// The key ranges a `differs` line names for `KEY`: `KEY a..b` or `KEY a`.
fn named_ranges(line: &str) -> Vec<(i64, i64)> {
    line.split(&format!("{KEY} "))
        .skip(1)
        .filter_map(|rest| {
            let token = rest.split_whitespace().next()?;
            match token.split_once("..") {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => token.parse().ok().map(|k| (k, k)),
            }
        })
        .collect()
}

/// Whether the replica still holds the test's three changes.
async fn changes_present(my: &MySqlPool, updated: i64, deleted: i64) -> bool {
    let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT CAST((SELECT COUNT(*) FROM {TABLE} WHERE {KEY} = ? AND name LIKE '%(changed in the replica)') \
         + (SELECT COUNT(*) FROM {TABLE} WHERE {KEY} = ?) * 10 \
         + (SELECT COUNT(*) FROM {TABLE} WHERE {KEY} = ?) * 100 AS SIGNED)"
    )))
    .bind(updated)
    .bind(deleted)
    .bind(EXTRA_KEY)
    .fetch_one(my)
    .await
    .expect("read the replica");
    n == 101
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_only_names_each_changed_key_range_and_passes_after_a_reload() {
    let my = support::mysql_pool().await;
    // Armed before anything changes: also undoes what an interrupted earlier run left.
    let mut restore = Restore { armed: true };
    reload_then_verify();

    let (updated,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT CAST(MIN({KEY}) AS SIGNED) FROM {TABLE}"
    )))
    .fetch_one(&my)
    .await
    .expect("lowest key");
    let (deleted,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT CAST({KEY} AS SIGNED) FROM {TABLE} ORDER BY {KEY} LIMIT 1 OFFSET 2000"
    )))
    .fetch_one(&my)
    .await
    .expect("a key in the middle");

    // A replay of the change topic (above) or a reload by another run between the
    // changes and the verification would undo them: then they are made again.
    let mut attempt = 0;
    let (stdout, stderr) = loop {
        attempt += 1;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {TABLE} SET name = CONCAT(LEFT(name, 70), ?) WHERE {KEY} = ?"
        )))
        .bind(MARK)
        .bind(updated)
        .execute(&my)
        .await
        .expect("update a replica row");
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {TABLE} WHERE {KEY} = ?"
        )))
        .bind(deleted)
        .execute(&my)
        .await
        .expect("delete a replica row");
        sqlx::query(AssertSqlSafe(format!(
            "REPLACE INTO {TABLE} ({KEY}, name, parent_category_id) \
             VALUES (?, 'only in the replica', NULL)"
        )))
        .bind(EXTRA_KEY)
        .execute(&my)
        .await
        .expect("insert a replica row");
        let (out, stdout, stderr) = support::run(&["replicate", "--verify-only", "--table", TABLE]);
        if changes_present(&my, updated, deleted).await {
            assert!(
                !out.status.success(),
                "--verify-only passed on a changed replica:\n{stdout}\n{stderr}"
            );
            break (stdout, stderr);
        }
        assert!(
            attempt < 3,
            "the replica lost the test's changes three times (reloaded by other runs?)"
        );
        eprintln!("the replica lost the test's changes during the verification; again");
    };

    let line = stdout
        .lines()
        .find(|l| l.starts_with(TABLE))
        .unwrap_or_else(|| panic!("no line for {TABLE}:\n{stdout}\n{stderr}"));
    assert!(line.contains("differs: rows "), "{line}");
    let ranges = named_ranges(line);
    for key in [updated, deleted, EXTRA_KEY] {
        assert!(
            ranges.iter().any(|&(a, b)| a <= key && key <= b),
            "key {key} is in no range named by: {line}"
        );
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("1 of 1 table(s) differ") && errors[0].contains(TABLE),
        "{stderr}"
    );

    // A reload restores the replica: the verification passes again.
    reload_then_verify();
    restore.armed = false;
}

#[test]
fn named_ranges_reads_single_keys_and_spans() {
    let line = "product_categories   differs: rows 5 vs 5 (PostgreSQL vs MySQL), checksums \
                differ; differing key ranges: category_id 1 (1 vs 1 rows, content differs), \
                category_id 10..12 (3 vs 0 rows), category_id 2000000000 (0 vs 1 rows)";
    assert_eq!(
        named_ranges(line),
        vec![(1, 1), (10, 12), (2_000_000_000, 2_000_000_000)]
    );
}

/// The verification opens its snapshots under the tables' named locks, so it waits for
/// a run of `jobs replicate` that holds one, for a bounded time, then says so.
#[tokio::test(flavor = "multi_thread")]
async fn verify_only_waits_for_a_replication_in_progress_then_fails_clearly() {
    let my = support::mysql_pool().await;
    let mut held = my.acquire().await.expect("connection");
    let lock = format!("finals.{}.products", support::var("MYSQL_DB"));
    let (got,): (i64,) = sqlx::query_as("SELECT GET_LOCK(?, 5)")
        .bind(&lock)
        .fetch_one(&mut *held)
        .await
        .expect("GET_LOCK");
    assert_eq!(got, 1);
    let (out, _, stderr) = support::run(&[
        "replicate",
        "--verify-only",
        "--table",
        "products",
        "--lock-wait-secs",
        "1",
    ]);
    // Released here, not by dropping: the pool would keep the session, and the lock.
    sqlx::query("DO RELEASE_LOCK(?)")
        .bind(&lock)
        .execute(&mut *held)
        .await
        .expect("RELEASE_LOCK");
    assert!(!out.status.success());
    assert!(
        stderr.contains("MySQL table products is busy: another run has held it for more than 1s"),
        "{stderr}"
    );
}

#[test]
fn verify_only_and_the_benchmark_baseline_exclude_each_other() {
    let (out, _, stderr) = support::run(&["replicate", "--verify-only", "--baseline"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
