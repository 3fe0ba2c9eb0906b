//! `datagen kafka` against the Kafka of the local stack. Every test uses its own fresh
//! topic (deleted afterwards), so the platform's events topic is never touched.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use datagen::kafka::EventKind;
use datagen::kafka::events::{classify, fields};
use support::{error_lines, read_all, run};

struct Topic(String);

impl Topic {
    fn name(name: &str) -> Self {
        Topic(testkit::unique(&format!("datagen_test_{name}")))
    }

    async fn create(name: &str) -> Self {
        let t = Self::name(name);
        t.create_now().await;
        t
    }

    async fn create_now(&self) {
        testkit::create_topic(&self.0, 1).await;
    }

    async fn delete(self) {
        testkit::delete_topic(&self.0).await;
    }
}

fn delivered(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("delivered "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let after = &line[line.find("delivered ").unwrap() + "delivered ".len()..];
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn burst_is_read_back_exactly_and_parses() {
    let topic = Topic::create("burst").await;
    let (out, err) = run(&[
        "kafka",
        "--kafka-topic",
        &topic.0,
        "--count",
        "3000",
        "--bad-ratio",
        "0.3",
    ]);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("delivered 3000 of 3000 events"), "{err}");
    let messages = read_all(&topic.0, 3000);
    assert_eq!(messages.len(), 3000, "exactly the produced events");

    let mut kinds: HashMap<String, usize> = HashMap::new();
    let mut emails = HashSet::new();
    for (kind, payload) in &messages {
        let text = String::from_utf8_lossy(payload);
        // Each event is what its header says, by the reference validator.
        assert_eq!(classify(payload).as_str(), kind, "{text}");
        *kinds.entry(kind.clone()).or_default() += 1;
        if kind == "valid" {
            let v: serde_json::Value = serde_json::from_slice(payload).expect("valid JSON");
            for f in fields() {
                assert!(v[f].is_string(), "{f} in {text}");
            }
            assert!(
                chrono::DateTime::parse_from_rfc3339(v["registration_date"].as_str().unwrap())
                    .is_ok()
            );
            assert!(
                emails.insert(v["email"].as_str().unwrap().to_string()),
                "{text}"
            );
        }
    }
    for k in EventKind::MALFORMED {
        assert!(kinds.get(k.as_str()).is_some_and(|&n| n > 0), "{kinds:?}");
    }
    let bad = 3000 - kinds["valid"];
    assert!((700..1100).contains(&bad), "{kinds:?}");
    topic.delete().await;
}

#[tokio::test]
async fn sigterm_flushes_and_exits_zero() {
    let topic = Topic::create("sigterm").await;
    let child = support::datagen(&["kafka", "--kafka-topic", &topic.0, "--rate", "200"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("SIGTERM received"), "{err}");
    let n = delivered(&err);
    assert!(n > 100, "{err}");
    assert_eq!(read_all(&topic.0, n as usize).len() as u64, n);
    topic.delete().await;
}

#[tokio::test]
async fn waits_for_the_topic_to_appear() {
    let topic = Topic::name("late");
    let child = support::datagen(&[
        "kafka",
        "--kafka-topic",
        &topic.0,
        "--count",
        "10",
        "--wait-secs",
        "60",
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    tokio::time::sleep(Duration::from_secs(3)).await;
    topic.create_now().await;
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("does not exist yet"), "{err}");
    assert_eq!(delivered(&err), 10);
    assert_eq!(read_all(&topic.0, 10).len(), 10);
    topic.delete().await;
}

#[test]
fn errors_are_one_clear_line() {
    for (args, expect) in [
        (
            vec![
                "kafka",
                "--kafka-bootstrap-servers",
                "localhost:1",
                "--count",
                "1",
                "--wait-secs",
                "2",
            ],
            "Kafka at localhost:1 is unreachable",
        ),
        (
            vec![
                "kafka",
                "--kafka-topic",
                "datagen_no_such_topic",
                "--count",
                "1",
                "--wait-secs",
                "1",
            ],
            "topic datagen_no_such_topic does not exist on Kafka at",
        ),
        (
            vec!["kafka", "--bad-ratio", "1.5", "--count", "1"],
            "--bad-ratio 1.5",
        ),
        (vec!["kafka", "--period-secs", "0"], "must be > 0"),
    ] {
        let (out, err) = run(&args);
        assert!(!out.status.success(), "{args:?}: {err}");
        let errors = error_lines(&err);
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        assert!(errors[0].contains(expect), "{args:?}: {err}");
    }
}
