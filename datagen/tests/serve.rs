//! `datagen serve` as a real process against the local stack's Kafka and PostgreSQL.
//! Each test has its own topic (deleted afterwards) or its own scratch schema, so the
//! platform's topic and schema are never touched.

mod support;

use std::collections::HashMap;

use datagen::kafka::events::classify;
use serde_json::{Value, json};
use support::server::Server;
use support::{Scratch, checksum, counts, read_all};

async fn topic(name: &str) -> String {
    let t = testkit::unique(&format!("serve_test_{name}"));
    testkit::create_topic(&t, 1).await;
    t
}

#[tokio::test]
async fn a_kafka_run_arrives_exactly_with_the_malformed_share_asked() {
    let t = topic("exact").await;
    let server = Server::start("exact", &[("KAFKA_TOPIC", &t)]).await;
    let (status, run) = server
        .post_run(&json!({"target": "kafka", "count": 4000, "bad_ratio": 0.25, "seed": 7}))
        .await;
    assert_eq!(status, 202, "{run}");
    let run = server.wait_end(run["id"].as_u64().unwrap(), 120).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        (run["sent"].as_u64(), run["acked"].as_u64()),
        (Some(4000), Some(4000))
    );
    assert_eq!(run["failed"], 0);

    // What Kafka holds, read back with a consumer of our own: exactly the events.
    let messages = read_all(&t, 4000);
    assert_eq!(messages.len(), 4000, "exactly the run's events");
    let mut by_kind: HashMap<String, u64> = HashMap::new();
    for (kind, payload) in &messages {
        assert_eq!(
            classify(payload).as_str(),
            kind,
            "header says what the payload is"
        );
        *by_kind.entry(kind.clone()).or_default() += 1;
    }
    let malformed: u64 = by_kind
        .iter()
        .filter(|(k, _)| *k != "valid")
        .map(|(_, n)| n)
        .sum();
    // 25% of 4000 = 1000; the binomial spread (sd 27) stays well within this.
    assert!((880..=1120).contains(&malformed), "{by_kind:?}");
    for (kind, n) in &by_kind {
        assert_eq!(run["breakdown"][kind].as_u64(), Some(*n), "{run}");
    }
    testkit::delete_topic(&t).await;
    assert!(server.stop().success());
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_and_start_nothing() {
    let t = topic("bad").await;
    let server = Server::start(
        "bad",
        &[
            ("KAFKA_TOPIC", &t),
            ("GENERATOR_MAX_COUNT", "1000"),
            ("GENERATOR_MAX_RATE", "500"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let cases: Vec<(&str, &str, u16, &str)> = vec![
        (
            "application/json",
            r#"{"target":"kafka","count":-5}"#,
            422,
            "count",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":1001}"#,
            422,
            "GENERATOR_MAX_COUNT",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":1e30}"#,
            422,
            "count",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":0}"#,
            422,
            "at least 1",
        ),
        (
            "application/json",
            r#"{"target":"mongo","count":5}"#,
            422,
            "unknown variant `mongo`",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":5,"rate":0}"#,
            422,
            "above 0",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":5,"rate":-3}"#,
            422,
            "above 0",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":5,"rate":501}"#,
            422,
            "GENERATOR_MAX_RATE",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":5,"bad_ratio":2}"#,
            422,
            "between 0 and 1",
        ),
        (
            "application/json",
            r#"{"target":"postgres","count":5,"rate":5}"#,
            422,
            "kafka target only",
        ),
        (
            "application/json",
            r#"{"target":"kafka","count":5,"colour":1}"#,
            422,
            "unknown field `colour`",
        ),
        ("application/json", r#"{"target":"kafka""#, 400, "JSON"),
        ("application/json", "", 400, "JSON"),
        (
            "text/plain",
            r#"{"target":"kafka","count":5}"#,
            415,
            "Content-Type: application/json",
        ),
    ];
    for (content_type, body, expect, words) in cases {
        let r = client
            .post(server.url("/api/runs"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{body}: not JSON: {e}"));
        assert_eq!(status, expect, "{body}: {v}");
        let message = v["error"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {v}");
    }
    let (status, v) = server.get("/api/runs/12345").await;
    assert_eq!((status, v["error"].as_str()), (404, Some("no run 12345")));
    let (status, _) = server.get("/api/runs/x%ZZ").await;
    assert_eq!(status, 404);
    for wait in ["-1", "61", "abc", "NaN", "inf"] {
        let (status, v) = server.get(&format!("/api/runs/1?wait={wait}")).await;
        assert_eq!(status, 400, "wait={wait}: {v}");
        assert!(v["error"].as_str().unwrap().contains("wait"), "{v}");
    }
    // Nothing started, nothing reached Kafka, and the server is fine.
    let (_, runs) = server.get("/api/runs").await;
    assert_eq!(runs, json!([]));
    assert_eq!(read_all(&t, 0).len(), 0);
    assert_eq!(server.get("/health").await.0, 200);
    testkit::delete_topic(&t).await;
}

#[tokio::test]
async fn runs_go_side_by_side_are_bounded_and_can_be_cancelled() {
    let t = topic("cancel").await;
    let server = Server::start(
        "cancel",
        &[("KAFKA_TOPIC", &t), ("GENERATOR_MAX_RUNNING", "2")],
    )
    .await;
    let slow = json!({"target": "kafka", "count": 100000, "rate": 200});
    let (s1, a) = server.post_run(&slow).await;
    let (s2, b) = server.post_run(&slow).await;
    assert_eq!((s1, s2), (202, 202), "{a} {b}");
    let (s3, refused) = server.post_run(&slow).await;
    assert_eq!(s3, 429, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("GENERATOR_MAX_RUNNING")
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (_, runs) = server.get("/api/runs").await;
    assert_eq!(
        runs.as_array().unwrap().len(),
        2,
        "the refused run left no trace: {runs}"
    );
    for run in runs.as_array().unwrap() {
        assert_eq!(run["status"], "running", "{run}");
        assert!(
            run["acked"].as_u64().unwrap() > 0,
            "both make progress: {run}"
        );
    }
    // A waiting GET answers after its wait while the run goes on...
    let t0 = std::time::Instant::now();
    let (status, run) = server.get(&format!("/api/runs/{}?wait=1.5", a["id"])).await;
    let waited = t0.elapsed().as_secs_f64();
    assert_eq!((status, run["status"].as_str()), (200, Some("running")));
    assert!((1.4..10.0).contains(&waited), "answered after {waited} s");
    // ...and as soon as the run ends (here: cancelled meanwhile).
    let id = a["id"].as_u64().unwrap();
    let waiting = tokio::spawn({
        let url = server.url(&format!("/api/runs/{id}?wait=60"));
        async move {
            let t0 = std::time::Instant::now();
            let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            (v, t0.elapsed().as_secs_f64())
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut acked = 0;
    for id in [a["id"].as_u64().unwrap(), b["id"].as_u64().unwrap()] {
        let r = reqwest::Client::new()
            .post(server.url(&format!("/api/runs/{id}/cancel")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let run = server.wait_end(id, 60).await;
        assert_eq!(run["status"], "cancelled", "{run}");
        assert_eq!(run["sent"], run["acked"], "a cancel flushes: {run}");
        assert!(run["acked"].as_u64().unwrap() < 100000);
        acked += run["acked"].as_u64().unwrap();
        let again = reqwest::Client::new()
            .post(server.url(&format!("/api/runs/{id}/cancel")))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 409);
    }
    let (v, waited) = waiting.await.unwrap();
    assert_eq!(v["status"], "cancelled", "{v}");
    assert!(
        waited < 30.0,
        "the waiting GET answered at the end, after {waited} s"
    );
    assert_eq!(read_all(&t, acked as usize).len() as u64, acked);
    testkit::delete_topic(&t).await;
    assert!(server.stop().success());
}

#[tokio::test]
async fn an_outage_fails_the_run_with_a_reason_and_the_server_stays_up() {
    let password = testkit::var("POSTGRES_PASSWORD");
    let server = Server::start(
        "outage",
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            ("GENERATOR_KAFKA_WAIT_SECS", "2"),
            ("POSTGRES_PORT", "1"),
            ("GENERATOR_PG_CONNECT_SECS", "2"),
        ],
    )
    .await;
    let (_, k) = server
        .post_run(&json!({"target": "kafka", "count": 10}))
        .await;
    let (_, p) = server
        .post_run(&json!({"target": "postgres", "count": 10}))
        .await;
    let k = server.wait_end(k["id"].as_u64().unwrap(), 30).await;
    let p = server.wait_end(p["id"].as_u64().unwrap(), 30).await;
    assert_eq!(k["status"], "failed", "{k}");
    assert!(
        k["message"]
            .as_str()
            .unwrap()
            .contains("Kafka at 127.0.0.1:1 is unreachable"),
        "{k}"
    );
    assert_eq!(p["status"], "failed", "{p}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect to PostgreSQL"),
        "{p}"
    );
    assert_eq!(server.get("/health").await.0, 200);
    let (_, list) = server.get("/api/runs").await;
    let log = server.log_text();
    for text in [list.to_string(), log.clone()] {
        assert!(
            !text.contains(&password),
            "the database password leaked: {text}"
        );
    }
    assert!(log.contains("failed"), "the failure is logged: {log}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_postgres_run_loads_the_data_set_of_datagen_pg_into_an_empty_schema() {
    // Two scratch schemas: one filled through the service, one by the command line
    // with the same volumes and seed; the platform schema is never touched.
    let served = Scratch::new("serve_pg").await;
    let cli = Scratch::new("serve_pg_cli").await;
    let server = Server::start("pg", &[("POSTGRES_SCHEMA", &served.schema)]).await;
    let (status, run) = server
        .post_run(&json!({"target": "postgres", "count": 300, "seed": 9}))
        .await;
    assert_eq!(status, 202, "{run}");
    let run = server.wait_end(run["id"].as_u64().unwrap(), 120).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // 300 users and the .env proportions (5000:5000:500:10000:40000).
    let expect = [300, 300, 30, 600, 2400];
    let mut c = served.conn().await;
    assert_eq!(counts(&mut c).await, expect);
    assert_eq!(
        run["acked"].as_u64(),
        Some(expect.iter().sum::<i64>() as u64),
        "{run}"
    );
    assert_eq!(run["breakdown"]["users"], 300);

    let (out, err) = support::run(&[
        "pg",
        "--pg-schema",
        &cli.schema,
        "--seed",
        "9",
        "--users",
        "300",
        "--categories",
        "300",
        "--products",
        "30",
        "--orders",
        "600",
        "--order-details",
        "2400",
    ]);
    assert!(out.status.success(), "{err}");
    let mut c2 = cli.conn().await;
    assert_eq!(
        checksum(&mut c).await,
        checksum(&mut c2).await,
        "one generator, same data"
    );

    // A second run finds the data there and writes nothing, as `datagen pg` does.
    let (_, again) = server
        .post_run(&json!({"target": "postgres", "count": 5}))
        .await;
    let again = server.wait_end(again["id"].as_u64().unwrap(), 60).await;
    assert_eq!(again["status"], "skipped", "{again}");
    assert_eq!(counts(&mut c).await, expect);
    drop(c);
    drop(c2);
    assert!(server.stop().success());
    served.drop().await;
    cli.drop().await;
}
