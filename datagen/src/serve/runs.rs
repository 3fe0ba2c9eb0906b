//! Generation runs: what a request may ask for (checked before anything starts), the
//! runs going on and the recent ones, and each run executed by the same functions as
//! `datagen kafka` / `datagen pg`, with a [`Counters`] sink and a cancellation token.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::args::ServeArgs;
use crate::kafka::KafkaArgs;
use crate::pg::{DEFAULT_SEED, Outcome, PgArgs, VolumeArgs, Volumes};
use crate::progress::Counters;
use crate::shutdown::Shutdown;

/// Where a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// User registration events to the Kafka topic (`KAFKA_TOPIC`), as `datagen kafka`.
    Kafka,
    /// The e-commerce data set into PostgreSQL, as `datagen pg`: loaded in one
    /// transaction when the tables are empty, otherwise nothing is written.
    Postgres,
}

/// A request for a run.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub target: Target,
    /// Events (kafka) or users (postgres; the other tables scale with it, in the
    /// proportions of `PG_DATAGEN_*`). At least 1, at most `GENERATOR_MAX_COUNT` /
    /// `GENERATOR_MAX_PG_USERS`.
    #[serde(deserialize_with = "whole::number")]
    #[schema(minimum = 1, maximum = 9223372036854775807_i64)]
    pub count: u64,
    /// Events per second (kafka only), from 0.01 to `GENERATOR_MAX_RATE`; omitted:
    /// at `GENERATOR_MAX_RATE`.
    #[serde(default)]
    #[schema(minimum = 0.01)]
    pub rate: Option<f64>,
    /// Share of malformed events, 0 to 1 (kafka only).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub bad_ratio: Option<f64>,
    /// Seed of the generated content; omitted: from the clock (kafka), 42 (postgres).
    #[serde(default, deserialize_with = "whole::optional")]
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub seed: Option<u64>,
}

/// The slowest pace a run may ask for (one event every 100 s).
pub const MIN_RATE: f64 = 0.01;

/// Whole numbers as JSON may write them: `5` and `5.0` alike (JSON Schema's `integer`).
mod whole {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    fn to_u64<E: Error>(n: serde_json::Number) -> Result<u64, E> {
        if let Some(u) = n.as_u64() {
            return Ok(u);
        }
        match n.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(f as u64),
            _ => Err(E::custom(format!(
                "invalid value: {n}, expected a whole number from 0 to {}",
                u64::MAX
            ))),
        }
    }

    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        to_u64(serde_json::Number::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(to_u64)
            .transpose()
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    /// Every event or row was confirmed by the target.
    Succeeded,
    /// PostgreSQL already held the data set: nothing was written.
    Skipped,
    /// Stopped by a cancel request: Kafka holds what was acknowledged; PostgreSQL
    /// rolled back.
    Cancelled,
    /// The run could not finish; `message` says why.
    Failed,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub id: u64,
    pub target: Target,
    /// The topic, or the PostgreSQL database and schema.
    pub destination: String,
    pub count: u64,
    /// Events per second the run is paced at (kafka).
    pub rate: Option<f64>,
    pub bad_ratio: f64,
    pub seed: Option<u64>,
    pub status: Status,
    /// What the run is doing: `events`, or the table being copied.
    pub stage: String,
    /// Items the run will send: events, or rows of all tables.
    pub total: u64,
    /// Items handed to the target.
    pub sent: u64,
    /// Items the target confirmed (Kafka delivery reports; PostgreSQL's commit).
    pub acked: u64,
    /// Items lost (not delivered, or rolled back).
    pub failed: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub elapsed_secs: f64,
    /// Items sent per second so far (at the end: over the whole run).
    pub per_sec: f64,
    /// Why it failed or was skipped.
    pub message: Option<String>,
    /// At the end: events per kind (kafka) or rows per table (postgres).
    pub breakdown: BTreeMap<String, u64>,
}

/// Why a request was refused: the HTTP status and a message for the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The request asks for something not allowed (422).
    Invalid(String),
    /// Too many runs at once (429).
    Busy(String),
}

/// What the server allows, from its settings.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_count: u64,
    pub max_pg_users: u64,
    pub max_rate: f64,
    pub max_running: usize,
    pub history: usize,
}

impl Limits {
    pub fn from_args(a: &ServeArgs) -> Self {
        Self {
            max_count: a.max_count,
            max_pg_users: a.max_pg_users,
            max_rate: a.max_rate,
            max_running: a.max_running.max(1),
            history: a.history,
        }
    }

    /// The request made whole (the pace filled in), or why it is refused.
    pub fn check(&self, r: &RunRequest) -> Result<RunRequest, String> {
        let mut r = r.clone();
        if r.count == 0 {
            return Err("count must be at least 1".into());
        }
        // The document says int64, as most clients store integers.
        if let Some(seed) = r.seed
            && seed > i64::MAX as u64
        {
            return Err(format!("seed {seed} must be at most {}", i64::MAX));
        }
        match r.target {
            Target::Kafka => {
                if r.count > self.max_count {
                    return Err(format!(
                        "count {} is over the limit of {} events per run (GENERATOR_MAX_COUNT)",
                        r.count, self.max_count
                    ));
                }
                let rate = r.rate.unwrap_or(self.max_rate);
                if !rate.is_finite() || rate < MIN_RATE {
                    return Err(format!(
                        "rate {rate} must be a number of events per second of at least {MIN_RATE}, above 0 (omit it for the fastest allowed)"
                    ));
                }
                if rate > self.max_rate {
                    return Err(format!(
                        "rate {rate} is over the limit of {} events/s (GENERATOR_MAX_RATE)",
                        self.max_rate
                    ));
                }
                r.rate = Some(rate);
                let bad = r.bad_ratio.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&bad) {
                    return Err(format!("bad_ratio {bad} must be between 0 and 1"));
                }
                r.bad_ratio = Some(bad);
            }
            Target::Postgres => {
                if r.count > self.max_pg_users {
                    return Err(format!(
                        "count {} is over the limit of {} users per run (GENERATOR_MAX_PG_USERS)",
                        r.count, self.max_pg_users
                    ));
                }
                if r.rate.is_some() {
                    return Err(
                        "rate applies to the kafka target only (PostgreSQL is loaded in one COPY transaction)"
                            .into(),
                    );
                }
                if r.bad_ratio.is_some_and(|b| b != 0.0) {
                    return Err("bad_ratio applies to the kafka target only (PostgreSQL's constraints would refuse malformed rows)".into());
                }
                r.bad_ratio = Some(0.0);
                r.seed = Some(r.seed.unwrap_or(DEFAULT_SEED));
            }
        }
        Ok(r)
    }
}

/// The data set's volumes for `users` users: each table of `base` scaled by
/// `users / base.users`, rounded up so that every table that has rows in `base` keeps
/// at least one (children need parents).
pub fn scale_volumes(base: &Volumes, users: u64) -> Volumes {
    let from = base.users.max(1) as u128;
    let scale = |v: usize| -> usize {
        let v = v as u128 * users as u128;
        usize::try_from(v.div_ceil(from)).unwrap_or(usize::MAX)
    };
    Volumes {
        users: users as usize,
        products: scale(base.products),
        orders: scale(base.orders),
        order_details: scale(base.order_details),
        categories: scale(base.categories),
    }
}

#[derive(Debug)]
struct Ending {
    status: Status,
    finished_at: Option<DateTime<Utc>>,
    elapsed: Option<Duration>,
    message: Option<String>,
    breakdown: BTreeMap<String, u64>,
}

struct Run {
    id: u64,
    request: RunRequest,
    destination: String,
    total: u64,
    counters: Arc<Counters>,
    cancel: Shutdown,
    started_at: DateTime<Utc>,
    started: Instant,
    ending: Mutex<Ending>,
    /// Turns true when the run ends, for requests that wait for the end.
    ended: tokio::sync::watch::Sender<bool>,
}

impl Run {
    fn status(&self) -> Status {
        self.ending
            .lock()
            .map(|e| e.status)
            .unwrap_or(Status::Failed)
    }

    fn view(&self) -> RunView {
        let c = self.counters.snapshot();
        let (status, finished_at, elapsed, message, breakdown) = match self.ending.lock() {
            Ok(e) => (
                e.status,
                e.finished_at,
                e.elapsed.unwrap_or_else(|| self.started.elapsed()),
                e.message.clone(),
                e.breakdown.clone(),
            ),
            Err(_) => (
                Status::Failed,
                None,
                self.started.elapsed(),
                Some("internal error: run state poisoned".into()),
                BTreeMap::new(),
            ),
        };
        let secs = elapsed.as_secs_f64();
        // A failed run lost what was sent and not confirmed (PostgreSQL rolled back).
        let failed = if status == Status::Failed {
            c.failed.max(c.sent.saturating_sub(c.acked))
        } else {
            c.failed
        };
        RunView {
            id: self.id,
            target: self.request.target,
            destination: self.destination.clone(),
            count: self.request.count,
            rate: self.request.rate,
            bad_ratio: self.request.bad_ratio.unwrap_or(0.0),
            seed: self.request.seed,
            status,
            stage: c.stage,
            total: self.total,
            sent: c.sent,
            acked: c.acked,
            failed,
            started_at: self.started_at,
            finished_at,
            elapsed_secs: secs,
            per_sec: if secs > 0.0 {
                c.sent as f64 / secs
            } else {
                0.0
            },
            message,
            breakdown,
        }
    }

    fn finish(&self, status: Status, message: Option<String>, breakdown: BTreeMap<String, u64>) {
        if let Ok(mut e) = self.ending.lock() {
            *e = Ending {
                status,
                finished_at: Some(Utc::now()),
                elapsed: Some(self.started.elapsed()),
                message,
                breakdown,
            };
        }
        self.ended.send_replace(true);
    }
}

/// The runs going on and the recent ones, and how to start one.
pub struct Runs {
    limits: Limits,
    settings: ServeArgs,
    next_id: AtomicU64,
    runs: Mutex<BTreeMap<u64, Arc<Run>>>,
}

impl Runs {
    pub fn new(settings: ServeArgs) -> Self {
        Self {
            limits: Limits::from_args(&settings),
            settings,
            next_id: AtomicU64::new(1),
            runs: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Run>>> {
        // A panic elsewhere never leaves the map half-changed (single inserts/removes).
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the request and starts the run in the background; nothing starts when
    /// it is refused.
    pub fn start(&self, request: &RunRequest) -> Result<RunView, Refusal> {
        let request = self.limits.check(request).map_err(Refusal::Invalid)?;
        let (total, job) = self.job(&request).map_err(Refusal::Invalid)?;
        let mut runs = self.lock();
        let running = runs
            .values()
            .filter(|r| r.status() == Status::Running)
            .count();
        if running >= self.limits.max_running {
            return Err(Refusal::Busy(format!(
                "{running} runs are going on, the most allowed at once (GENERATOR_MAX_RUNNING); wait for one to end or cancel one"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let run = Arc::new(Run {
            id,
            destination: match request.target {
                Target::Kafka => format!(
                    "topic {} at {}",
                    self.settings.kafka.topic, self.settings.kafka.bootstrap_servers
                ),
                Target::Postgres => format!(
                    "{} (schema {})",
                    self.settings.postgres.describe(),
                    self.settings.postgres.schema
                ),
            },
            request,
            total,
            counters: Arc::new(Counters::default()),
            cancel: Shutdown::new(),
            started_at: Utc::now(),
            started: Instant::now(),
            ending: Mutex::new(Ending {
                status: Status::Running,
                finished_at: None,
                elapsed: None,
                message: None,
                breakdown: BTreeMap::new(),
            }),
            ended: tokio::sync::watch::channel(false).0,
        });
        runs.insert(id, run.clone());
        self.prune(&mut runs);
        drop(runs);
        let view = run.view();
        tracing::info!(
            "run {id}: {:?}, {} of {} to {}",
            run.request.target,
            run.request.count,
            total,
            run.destination
        );
        tokio::spawn(supervise(run, job).instrument(tracing::info_span!("run", id)));
        Ok(view)
    }

    /// What to run, built from the server's settings and the (checked) request.
    fn job(&self, r: &RunRequest) -> Result<(u64, Job), String> {
        let s = &self.settings;
        Ok(match r.target {
            Target::Kafka => (
                r.count,
                Job::Kafka(Box::new(KafkaArgs {
                    kafka: s.kafka.clone(),
                    period_secs: 1.0,
                    count: Some(r.count),
                    rate: r.rate,
                    seed: r.seed,
                    bad_ratio: r.bad_ratio.unwrap_or(0.0),
                    wait_secs: s.kafka_wait_secs,
                    delivery_timeout_secs: 30,
                })),
            ),
            Target::Postgres => {
                let volumes = scale_volumes(&Volumes::from(s.volumes), r.count);
                volumes.check().map_err(|e| e.to_string())?;
                (
                    volumes.total() as u64,
                    Job::Postgres(Box::new(PgArgs {
                        postgres: s.postgres.clone(),
                        volumes: VolumeArgs {
                            users: volumes.users,
                            products: volumes.products,
                            orders: volumes.orders,
                            order_details: volumes.order_details,
                            categories: volumes.categories,
                        },
                        seed: r.seed.unwrap_or(DEFAULT_SEED),
                        as_of: None,
                        reset: false,
                        connect_timeout_secs: s.pg_connect_secs,
                    })),
                )
            }
        })
    }

    /// Keeps every running run and the newest `history` finished ones.
    fn prune(&self, runs: &mut BTreeMap<u64, Arc<Run>>) {
        let finished: Vec<u64> = runs
            .iter()
            .filter(|(_, r)| r.status() != Status::Running)
            .map(|(id, _)| *id)
            .collect();
        let excess = finished.len().saturating_sub(self.limits.history);
        for id in finished.into_iter().take(excess) {
            runs.remove(&id);
        }
    }

    pub fn get(&self, id: u64) -> Option<RunView> {
        self.lock().get(&id).map(|r| r.view())
    }

    /// The run once it has ended, or as it is after `wait` if it is still running.
    pub async fn wait(&self, id: u64, wait: Duration) -> Option<RunView> {
        let run = self.lock().get(&id).cloned()?;
        let mut ended = run.ended.subscribe();
        let _ = tokio::time::timeout(wait, ended.wait_for(|e| *e)).await;
        Some(run.view())
    }

    /// Newest first.
    pub fn list(&self) -> Vec<RunView> {
        self.lock().values().rev().map(|r| r.view()).collect()
    }

    /// Asks a running run to stop. `None`: no such run; `Some(Err)`: it had ended.
    pub fn cancel(&self, id: u64) -> Option<Result<RunView, RunView>> {
        let run = self.lock().get(&id).cloned()?;
        if run.status() != Status::Running {
            return Some(Err(run.view()));
        }
        tracing::info!("run {id}: cancel requested");
        run.cancel.request();
        Some(Ok(run.view()))
    }

    /// Cancels every run (server shutdown).
    pub fn cancel_all(&self) {
        for run in self.lock().values() {
            run.cancel.request();
        }
    }

    pub fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|r| r.status() == Status::Running)
            .count()
    }
}

enum Job {
    Kafka(Box<KafkaArgs>),
    Postgres(Box<PgArgs>),
}

/// Runs the job in a task of its own, so that even a bug that panics ends the run as
/// failed instead of leaving it `running` for ever.
async fn supervise(run: Arc<Run>, job: Job) {
    let inner = run.clone();
    let task = tokio::spawn(execute(inner, job).in_current_span());
    if let Err(e) = task.await {
        tracing::error!("run {} crashed: {e}", run.id);
        run.finish(
            Status::Failed,
            Some(format!("internal error: {e}")),
            BTreeMap::new(),
        );
    }
}

async fn execute(run: Arc<Run>, job: Job) {
    let (status, message, breakdown) = match job {
        Job::Kafka(args) => {
            match crate::kafka::run(&args, &run.cancel, run.counters.clone()).await {
                Ok(stats) => {
                    let breakdown = stats
                        .by_kind
                        .iter()
                        .map(|(k, n)| (k.as_str().to_string(), *n))
                        .collect();
                    if run.cancel.is_requested() {
                        let m = format!(
                            "cancelled after {} of {} events (all {} delivered)",
                            stats.produced, run.request.count, stats.delivered
                        );
                        (Status::Cancelled, Some(m), breakdown)
                    } else {
                        (Status::Succeeded, None, breakdown)
                    }
                }
                Err(e) => (Status::Failed, Some(e.to_string()), BTreeMap::new()),
            }
        }
        Job::Postgres(args) => match crate::pg::run(&args, &run.cancel, &*run.counters).await {
            Ok(Outcome::Loaded { tables, .. }) => (
                Status::Succeeded,
                None,
                tables
                    .iter()
                    .map(|(t, n)| (t.to_string(), *n as u64))
                    .collect(),
            ),
            Ok(Outcome::AlreadyPopulated(counts)) => (
                Status::Skipped,
                Some(format!(
                    "the tables already hold data, nothing was written ({})",
                    counts
                        .iter()
                        .map(|(t, n)| format!("{t} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                BTreeMap::new(),
            ),
            Err(crate::pg::PgError::Cancelled) => (
                Status::Cancelled,
                Some(
                    "cancelled before the commit; PostgreSQL rolled back, nothing was written"
                        .into(),
                ),
                BTreeMap::new(),
            ),
            // The whole chain: the database's own message is the useful part.
            Err(e) => (Status::Failed, Some(error_chain(&e)), BTreeMap::new()),
        },
    };
    match (&status, &message) {
        (Status::Failed, Some(m)) => tracing::error!("run {} failed: {m}", run.id),
        (_, Some(m)) => tracing::info!("run {}: {m}", run.id),
        _ => tracing::info!("run {} {:?}", run.id, status),
    }
    run.finish(status, message, breakdown);
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_count: 1000,
            max_pg_users: 100,
            max_rate: 500.0,
            max_running: 2,
            history: 10,
        }
    }

    fn req(target: Target, count: u64) -> RunRequest {
        RunRequest {
            target,
            count,
            rate: None,
            bad_ratio: None,
            seed: None,
        }
    }

    #[test]
    fn requests_are_checked_against_the_limits() {
        let l = limits();
        let ok = l.check(&req(Target::Kafka, 10)).unwrap();
        assert_eq!(ok.rate, Some(500.0), "no rate: the fastest allowed");
        assert_eq!(ok.bad_ratio, Some(0.0));
        for (r, expect) in [
            (req(Target::Kafka, 0), "at least 1"),
            (req(Target::Kafka, 1001), "GENERATOR_MAX_COUNT"),
            (req(Target::Postgres, 101), "GENERATOR_MAX_PG_USERS"),
            (
                RunRequest {
                    rate: Some(0.0),
                    ..req(Target::Kafka, 1)
                },
                "above 0",
            ),
            (
                RunRequest {
                    rate: Some(501.0),
                    ..req(Target::Kafka, 1)
                },
                "GENERATOR_MAX_RATE",
            ),
            (
                RunRequest {
                    bad_ratio: Some(1.5),
                    ..req(Target::Kafka, 1)
                },
                "between 0 and 1",
            ),
            (
                RunRequest {
                    rate: Some(5.0),
                    ..req(Target::Postgres, 1)
                },
                "kafka target only",
            ),
        ] {
            let e = l.check(&r).unwrap_err();
            assert!(e.contains(expect), "{r:?}: {e}");
        }
        assert_eq!(
            l.check(&req(Target::Postgres, 5)).unwrap().seed,
            Some(DEFAULT_SEED)
        );
    }

    #[test]
    fn volumes_scale_with_the_users_and_keep_parents() {
        let base = crate::pg::DEFAULT_VOLUMES;
        let v = scale_volumes(&base, 500);
        assert_eq!(
            (v.users, v.products, v.orders, v.order_details, v.categories),
            (500, 50, 1000, 4000, 500)
        );
        let one = scale_volumes(&base, 1);
        assert_eq!(
            (
                one.users,
                one.products,
                one.orders,
                one.order_details,
                one.categories
            ),
            (1, 1, 2, 8, 1)
        );
        assert!(one.check().is_ok());
    }
}
