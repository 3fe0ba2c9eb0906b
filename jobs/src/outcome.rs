//! Concurrent units of work (tables, marts) that must all succeed.

use anyhow::{Result, bail};

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
