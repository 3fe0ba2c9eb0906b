//! Concurrent units of work (tables, marts) that must all succeed.

use std::future::Future;

use anyhow::{Result, bail};
use futures::future::join_all;

/// Runs `unit` for every item at once (their Spark Connect calls run on blocking
/// threads of their own, so Spark runs the items' jobs side by side), then
/// [`all_or_report`]s the results under the items' names.
pub async fn side_by_side<I, T, Fut>(
    what: &str,
    items: &[I],
    name: impl Fn(I) -> &'static str,
    unit: impl Fn(I) -> Fut,
) -> Result<Vec<T>>
where
    I: Copy,
    Fut: Future<Output = Result<T>>,
{
    let results = join_all(items.iter().map(|item| unit(*item))).await;
    all_or_report(what, items.iter().map(|item| name(*item)).zip(results))
}

/// The reports of every unit, or one error naming each unit that failed and why.
/// `what` completes "… failed for <name>: <cause>; …".
pub fn all_or_report<T>(
    what: &str,
    results: impl IntoIterator<Item = (&'static str, Result<T>)>,
) -> Result<Vec<T>> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (name, r) in results {
        match r {
            Ok(rep) => reports.push(rep),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!("{what} failed for {}", failures.join("; "));
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_named() {
        let ok: Result<Vec<i32>> = all_or_report("x", [("a", Ok(1)), ("b", Ok(2))]);
        assert_eq!(ok.expect("all ok"), vec![1, 2]);
        let err = all_or_report::<i32>(
            "replication",
            [
                ("a", Ok(1)),
                ("b", Err(anyhow::anyhow!("down"))),
                ("c", Err(anyhow::anyhow!("gone"))),
            ],
        )
        .expect_err("failures");
        assert_eq!(err.to_string(), "replication failed for b: down; c: gone");
    }
}
