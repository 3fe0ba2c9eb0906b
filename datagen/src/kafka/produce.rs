//! The producer: idempotent, every event's delivery is confirmed or counted as failed;
//! waits for Kafka (and the topic) to come up; stops cleanly when cancelled (SIGTERM
//! for the command line, a cancel request for the service).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;

use super::args::KafkaArgs;
use super::events::{EventGen, EventKind, KIND_HEADER};
use crate::progress::ProgressSink;
use crate::shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("bad setting: {0}")]
    Settings(String),
    #[error("cannot create a Kafka producer for {bootstrap}: {source}")]
    Client {
        bootstrap: String,
        #[source]
        source: Box<RdError>,
    },
    #[error("Kafka at {bootstrap} is unreachable (waited {secs} s): {last}")]
    Unreachable {
        bootstrap: String,
        secs: u64,
        last: String,
    },
    #[error("topic {topic} does not exist on Kafka at {bootstrap} (waited {secs} s)")]
    NoTopic {
        topic: String,
        bootstrap: String,
        secs: u64,
    },
    #[error("producing to topic {topic} at {bootstrap} failed: {source}")]
    Produce {
        topic: String,
        bootstrap: String,
        #[source]
        source: Box<RdError>,
    },
    #[error(
        "{failed} of {produced} events were not delivered to topic {topic} at {bootstrap}: {first_error}"
    )]
    Undelivered {
        failed: u64,
        produced: u64,
        topic: String,
        bootstrap: String,
        first_error: String,
    },
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub produced: u64,
    pub delivered: u64,
    /// Events per kind, in the order of `EventKind::Valid` then `EventKind::MALFORMED`.
    pub by_kind: Vec<(EventKind, u64)>,
    /// Time from the first event to the last delivery confirmation.
    pub elapsed: Duration,
}

impl Stats {
    pub fn malformed(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| *k != EventKind::Valid)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn per_sec(&self) -> f64 {
        self.produced as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Counts delivery reports (and passes them on to the progress sink); keeps
/// librdkafka's own chatter at debug level (the waiting loop reports connection
/// problems itself, once, in plain words).
struct Ctx {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    progress: Arc<dyn ProgressSink>,
}

impl ClientContext for Ctx {
    fn log(&self, _level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!("librdkafka {fac}: {log_message}");
    }

    fn error(&self, error: RdError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.progress.acked(1);
            }
            Err((e, _)) => {
                self.progress.failed(1);
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!("an event was not delivered: {e}");
                }
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

type Prod = ThreadedProducer<Ctx>;

/// How events are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    Every(Duration),
    Unlimited,
}

fn pace(args: &KafkaArgs) -> Result<Pace, KafkaError> {
    let bad = |m: String| Err(KafkaError::Settings(m));
    if !(0.0..=1.0).contains(&args.bad_ratio) {
        return bad(format!(
            "--bad-ratio {} must be between 0 and 1",
            args.bad_ratio
        ));
    }
    match (args.rate, args.count) {
        (Some(r), _) if !r.is_finite() || r < 0.0 => bad(format!(
            "--rate {r} must be a number of events per second >= 0"
        )),
        (Some(0.0), _) => Ok(Pace::Unlimited),
        (Some(r), _) => Duration::try_from_secs_f64(1.0 / r)
            .map(Pace::Every)
            .or_else(|_| bad(format!("--rate {r} is too slow to pace events"))),
        (None, Some(_)) => Ok(Pace::Unlimited),
        (None, None) if !args.period_secs.is_finite() || args.period_secs <= 0.0 => bad(format!(
            "KAFKA_DATAGEN_PERIOD_SECS / --period-secs {} must be > 0",
            args.period_secs
        )),
        (None, None) => Ok(Pace::Every(Duration::from_secs_f64(args.period_secs))),
    }
}

/// Runs `datagen kafka` until `--count` events are produced or `shutdown` is
/// requested (a cancellation: the result is then what was produced so far); then
/// flushes, so every produced event is either confirmed or reported as failed.
/// `progress` hears of every event sent, delivered or lost.
pub async fn run(
    args: &KafkaArgs,
    shutdown: &Shutdown,
    progress: Arc<dyn ProgressSink>,
) -> Result<Stats, KafkaError> {
    let pace = pace(args)?;
    let bootstrap = args.kafka.bootstrap_servers.clone();
    let topic = args.kafka.topic.clone();
    if topic.is_empty() {
        return Err(KafkaError::Settings(
            "KAFKA_TOPIC / --kafka-topic is empty".into(),
        ));
    }
    let delivery_timeout = Duration::from_secs(args.delivery_timeout_secs.max(1));
    let mut config = args.kafka.client_config(delivery_timeout);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "65536");
    let ctx = Ctx {
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
        progress: progress.clone(),
    };
    let producer: Arc<Prod> =
        Arc::new(
            config
                .create_with_context(ctx)
                .map_err(|source| KafkaError::Client {
                    bootstrap: bootstrap.clone(),
                    source: Box::new(source),
                })?,
        );

    if !wait_for_topic(&producer, args, shutdown).await? {
        tracing::info!("stopped before Kafka was reachable: nothing produced");
        return Ok(Stats::default());
    }
    tracing::info!(
        "producing to topic {topic} at {bootstrap}: {}, {}% malformed",
        match (pace, args.count) {
            (Pace::Every(d), Some(n)) => format!("{n} events, one every {d:?}"),
            (Pace::Every(d), None) => format!("one event every {d:?} until stopped"),
            (Pace::Unlimited, Some(n)) => format!("{n} events as fast as possible"),
            (Pace::Unlimited, None) => "as fast as possible until stopped".into(),
        },
        args.bad_ratio * 100.0
    );

    progress.stage("events", args.count);
    let mut generator = EventGen::for_run(args.seed, args.bad_ratio);
    let kinds: Vec<EventKind> = std::iter::once(EventKind::Valid)
        .chain(EventKind::MALFORMED)
        .collect();
    let mut by_kind = vec![0u64; kinds.len()];
    let started = Instant::now();
    let mut last_log = started;
    let mut produced = 0u64;
    let chatty = matches!(pace, Pace::Every(d) if d >= Duration::from_millis(500));
    // At high rates the clock is read, and the progress sink told, once per chunk of
    // events: a shared counter bumped per event costs the service about 10% of its
    // throughput against the command line. The pace still holds to within 1 ms.
    let chunk = match pace {
        Pace::Every(d) => (Duration::from_millis(1).as_nanos() / d.as_nanos().max(1)).max(1),
        Pace::Unlimited => 1024,
    } as u64;
    let mut unsent = 0u64;
    while args.count.is_none_or(|c| produced < c) && !shutdown.is_requested() {
        if produced.is_multiple_of(chunk) {
            progress.sent(std::mem::take(&mut unsent));
            if let Pace::Every(every) = pace {
                let due = started + every.mul_f64(produced as f64);
                if due > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = shutdown.requested() => break,
                    }
                }
            }
            if !chatty && last_log.elapsed() >= Duration::from_secs(5) {
                last_log = Instant::now();
                tracing::info!(
                    "{produced} events produced ({:.0}/s)",
                    produced as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        let event = generator.next_event(Utc::now());
        let headers = OwnedHeaders::new().insert(Header {
            key: KIND_HEADER,
            value: Some(event.kind.as_str()),
        });
        let mut record = BaseRecord::<(), [u8]>::to(&topic)
            .payload(&event.payload[..])
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    progress.sent(std::mem::take(&mut unsent));
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((source, _)) => {
                    // Earlier events are still flushed by the producer's drop.
                    return Err(KafkaError::Produce {
                        topic,
                        bootstrap,
                        source: Box::new(source),
                    });
                }
            }
        }
        produced += 1;
        unsent += 1;
        if let Some(i) = kinds.iter().position(|k| *k == event.kind) {
            by_kind[i] += 1;
        }
        if chatty {
            tracing::info!("event {produced} sent ({})", event.kind.as_str());
        }
    }
    progress.sent(unsent);

    // Flush: every event ends up confirmed or failed (message.timeout.ms bounds it).
    let flusher = producer.clone();
    let flush_timeout = delivery_timeout + Duration::from_secs(5);
    let _ = tokio::task::spawn_blocking(move || flusher.flush(flush_timeout)).await;
    let ctx = producer.context();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ctx.delivered.load(Ordering::SeqCst) + ctx.failed.load(Ordering::SeqCst) < produced
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = ctx.delivered.load(Ordering::SeqCst);
    let failed = produced.saturating_sub(delivered);
    if failed > 0 {
        let first_error = ctx
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "no delivery report before the timeout".into());
        return Err(KafkaError::Undelivered {
            failed,
            produced,
            topic,
            bootstrap,
            first_error,
        });
    }
    Ok(Stats {
        produced,
        delivered,
        by_kind: kinds.into_iter().zip(by_kind).collect(),
        elapsed: started.elapsed(),
    })
}

/// Waits until the broker answers and the topic has partitions. `Ok(false)` when a
/// shutdown was requested meanwhile.
async fn wait_for_topic(
    producer: &Arc<Prod>,
    args: &KafkaArgs,
    shutdown: &Shutdown,
) -> Result<bool, KafkaError> {
    let bootstrap = &args.kafka.bootstrap_servers;
    let topic = &args.kafka.topic;
    let started = Instant::now();
    let wait = Duration::from_secs(args.wait_secs);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let p = producer.clone();
        let t = topic.clone();
        let probe = tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(&t), Duration::from_secs(3))
                .map(|md| {
                    md.topics()
                        .first()
                        .map(|t| (t.error(), t.partitions().len()))
                })
        })
        .await;
        let (reason, topic_missing) = match probe {
            Ok(Ok(Some((None, n)))) if n > 0 => {
                if attempt > 1 {
                    tracing::info!("Kafka at {bootstrap} is up, topic {topic} is there");
                }
                return Ok(true);
            }
            Ok(Ok(Some((Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), _))))
            | Ok(Ok(None)) => (format!("topic {topic} does not exist yet"), true),
            Ok(Ok(Some((err, _)))) => (format!("topic {topic} is not ready ({err:?})"), true),
            Ok(Err(e)) => (format!("broker not reachable ({e})"), false),
            Err(e) => (format!("metadata probe failed ({e})"), false),
        };
        if started.elapsed() >= wait {
            return Err(if topic_missing {
                KafkaError::NoTopic {
                    topic: topic.clone(),
                    bootstrap: bootstrap.clone(),
                    secs: args.wait_secs,
                }
            } else {
                KafkaError::Unreachable {
                    bootstrap: bootstrap.clone(),
                    secs: args.wait_secs,
                    last: reason,
                }
            });
        }
        let left = wait.saturating_sub(started.elapsed()).as_secs();
        tracing::warn!("waiting for Kafka at {bootstrap}: {reason}; retrying for up to {left} s");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.requested() => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> KafkaArgs {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: KafkaArgs,
        }
        let mut argv = vec!["t", "--period-secs", "3"];
        argv.extend_from_slice(extra);
        T::parse_from(argv).a
    }

    #[test]
    fn pacing_follows_the_flags() {
        assert_eq!(
            pace(&args(&[])).unwrap(),
            Pace::Every(Duration::from_secs(3))
        );
        assert_eq!(pace(&args(&["--count", "5"])).unwrap(), Pace::Unlimited);
        assert_eq!(
            pace(&args(&["--count", "5", "--rate", "10"])).unwrap(),
            Pace::Every(Duration::from_millis(100))
        );
        assert_eq!(pace(&args(&["--rate", "0"])).unwrap(), Pace::Unlimited);
        assert!(pace(&args(&["--bad-ratio", "1.5"])).is_err());
        assert!(pace(&args(&["--rate=-1"])).is_err());
    }
}
