//! Where a generator reports how far it got. The command line draws bars on a terminal
//! ([`Terminal`]); the service (`datagen serve`) keeps counters that its API and page
//! read ([`Counters`]). The generators only see [`ProgressSink`].

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Told by a generator what it sent and what the target confirmed. Called from the
/// generator's task and from librdkafka's delivery thread, so it must be cheap.
pub trait ProgressSink: Send + Sync {
    /// A stage of `total` items starts: one table of `datagen pg`, the events of
    /// `datagen kafka` (`None`: until stopped).
    fn stage(&self, name: &str, total: Option<u64>);
    /// Items handed to the target (produced to Kafka, sent in a COPY).
    fn sent(&self, n: u64);
    /// Items the target confirmed (delivery reports, a committed transaction).
    fn acked(&self, n: u64);
    /// Items the target reported as lost.
    fn failed(&self, n: u64);
}

/// One progress bar per stage when stderr is a terminal; nothing otherwise (the
/// generators log their own summary lines, so logs of CI and services stay clean).
pub struct Terminal {
    multi: Option<MultiProgress>,
    current: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    pub fn auto() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            multi,
            current: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref()
        {
            f(bar);
        }
    }
}

impl ProgressSink for Terminal {
    fn stage(&self, name: &str, total: Option<u64>) {
        let Some(multi) = &self.multi else {
            return;
        };
        let style = ProgressStyle::with_template(
            "{prefix:>20} [{bar:30}] {pos:>8}/{len:8} {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = multi.add(ProgressBar::new(total.unwrap_or(0)).with_style(style));
        bar.set_prefix(name.to_string());
        if let Ok(mut current) = self.current.lock()
            && let Some(previous) = current.replace(bar)
        {
            previous.finish();
        }
    }

    fn sent(&self, n: u64) {
        self.with_bar(|b| b.inc(n));
    }

    fn acked(&self, _n: u64) {}

    fn failed(&self, _n: u64) {}
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.with_bar(|b| b.finish());
    }
}

/// Counters a reader can take a consistent-enough look at any time. Each on a cache
/// line of its own: `sent` is bumped by the generating thread, `acked` by librdkafka's.
#[derive(Debug, Default)]
pub struct Counters {
    sent: CachePadded<AtomicU64>,
    acked: CachePadded<AtomicU64>,
    failed: CachePadded<AtomicU64>,
    stage: Mutex<String>,
}

/// What [`Counters`] held at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub stage: String,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stage: self.stage.lock().map(|s| s.clone()).unwrap_or_default(),
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

impl ProgressSink for Counters {
    fn stage(&self, name: &str, _total: Option<u64>) {
        if let Ok(mut s) = self.stage.lock() {
            *s = name.to_string();
        }
    }

    fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    fn acked(&self, n: u64) {
        self.acked.fetch_add(n, Ordering::Relaxed);
    }

    fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let c = Counters::default();
        c.stage("users", Some(10));
        c.sent(7);
        c.sent(3);
        c.acked(9);
        c.failed(1);
        assert_eq!(
            c.snapshot(),
            Snapshot {
                stage: "users".into(),
                sent: 10,
                acked: 9,
                failed: 1
            }
        );
    }
}
