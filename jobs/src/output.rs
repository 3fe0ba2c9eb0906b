//! What a job prints: results on stdout, one `error:` line on stderr, exit codes.

use std::process::ExitCode;

/// Writes a line to stdout; a closed pipe (`jobs summary | head`) is not an error.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Exit status of a job: 0 on success; 1 with one `error:` line naming what failed
/// and where (the full error chain is logged at debug level). Clap exits with 2 on
/// bad usage before a job runs.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!("{e:?}");
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Spark errors carry whole JVM stack traces; the user gets the first line of each
/// cause.
pub fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    let mut s: String = first.chars().take(600).collect();
    if s.len() < first.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_the_first_line_and_bounds_it() {
        assert_eq!(one_line("a: b\n\tat x.y(Z.java:1)"), "a: b");
        let long = "x".repeat(700);
        assert_eq!(one_line(&long).chars().count(), 601);
    }
}
