//! No secret on any screen: after every job has run on the local stack (replicate,
//! marts, stream, and runs that fail inside Spark), no password of `.env` and not the
//! Spark Connect token appears on any page the Spark master, worker and application
//! UIs link to (or their REST API), in the stack's logs, the executors' logs, the
//! Spark event logs, or the command line of any process. And Spark Connect refuses a
//! client without the token.

mod support;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::SparkSettings;
use jobs::spark::jdbc::{self, JdbcTarget};

/// Every secret `.env` (or the environment) holds: the passwords and the token.
fn secrets() -> Vec<(String, String)> {
    common::load_dotenv();
    let env = std::fs::read_to_string(support::workspace_root().join(".env")).expect(".env");
    let names: BTreeSet<String> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| k.ends_with("_PASSWORD") || k.ends_with("_TOKEN") || k.ends_with("_SECRET"))
        .collect();
    let secrets: Vec<(String, String)> = names
        .into_iter()
        .filter_map(|k| std::env::var(&k).ok().map(|v| (k, v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    for (k, v) in &secrets {
        // A short or common word would be found everywhere and prove nothing.
        assert!(
            v.len() >= 8,
            "{k} is too short to search for: choose a real secret"
        );
    }
    assert!(secrets.iter().any(|(k, _)| k == "SPARK_CONNECT_TOKEN"));
    assert!(secrets.iter().any(|(k, _)| k == "POSTGRES_PASSWORD"));
    secrets
}

fn hits(text: &str, secrets: &[(String, String)], place: &str, found: &mut Vec<String>) {
    for (k, v) in secrets {
        if text.contains(v.as_str()) {
            found.push(format!("{k} in {place}"));
        }
    }
}

/// Same-origin links of a page (`href="..."`), absolute.
fn links(base: &str, page: &str) -> Vec<String> {
    let origin = base.split('/').take(3).collect::<Vec<_>>().join("/");
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter_map(|href| {
            if href.starts_with(&origin) {
                Some(href)
            } else if href.starts_with('/') {
                Some(format!("{origin}{href}"))
            } else {
                None
            }
        })
        .collect()
}

/// Crawls every same-origin page reachable from `starts`, never following an action
/// (kill links are GET requests in Spark's UI) nor the sort/paging variants of the
/// same table. Returns the pages visited.
fn crawl(starts: &[String], secrets: &[(String, String)], found: &mut Vec<String>) -> usize {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = starts.iter().cloned().collect();
    while let Some(url) = queue.pop_front() {
        if seen.len() >= 4000 || !seen.insert(url.clone()) {
            continue;
        }
        let Ok(mut resp) = agent.get(&url).call() else {
            continue;
        };
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        hits(&body, secrets, &url, found);
        for link in links(&url, &body) {
            let action = link.contains("kill") || link.contains("/static/");
            let variant = link.contains(".sort=")
                || link.contains(".desc=")
                || link.contains(".pageSize=")
                || link.contains(".page=");
            if !action && !variant && !seen.contains(&link) {
                queue.push_back(link);
            }
        }
    }
    seen.len()
}

/// A file's bytes; Spark's event logs are zstd-compressed (`.zstd`), so a plain
/// search of them would find nothing. Every frame is decoded; the log of the running
/// application may end in a frame still being written, of which what is there counts.
fn read_maybe_compressed(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    if path.extension().is_none_or(|e| e != "zstd") {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        let Ok(mut frame) = ruzstd::decoding::StreamingDecoder::new(&mut rest) else {
            break;
        };
        if std::io::Read::read_to_end(&mut frame, &mut out).is_err() {
            break;
        }
    }
    Ok(out)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_ui_page_log_event_log_or_command_line() {
    let secrets = secrets();
    let root = support::workspace_root();

    // Every job, and runs that fail inside Spark.
    support::run_ok(&["replicate", "--table", "product_categories"]);
    support::run_ok(&["marts", "--mart", "mart_average_check"]);
    support::run_ok(&["cdc", "--available-now"]);
    support::run_ok(&["dwh", "--available-now"]);
    let topic = support::unique("secrets_it");
    support::create_topic(&topic, 1).await;
    support::produce(
        &topic,
        &[support::good_event(&topic, 0), "{broken".to_string()],
    )
    .await;
    support::run_ok(&[
        "--kafka-topic",
        &topic,
        "stream",
        "--sink-id",
        &topic,
        "--available-now",
    ]);
    let spark = jobs::spark::connect(
        &SparkSettings {
            remote: support::var("SPARK_REMOTE"),
        },
        "secrets-test",
    )
    .await
    .expect("connect");
    for target in [
        // a user MySQL refuses: the driver and the executors log the failure
        JdbcTarget {
            user: "nobody_here".into(),
            ..JdbcTarget::mysql(&support::mysql()).expect("target")
        },
        // a variable the cluster does not have
        JdbcTarget {
            password_env: "NO_SUCH_PASSWORD",
            ..JdbcTarget::postgres(&support::postgres()).expect("target")
        },
    ] {
        let df = jdbc::read(&spark, &target, "users", None, 100, None);
        let err = jobs::spark::blocking(move || df.count())
            .await
            .expect_err("a refused login");
        let mut found = Vec::new();
        hits(&err.to_string(), &secrets, "the client's error", &mut found);
        assert!(found.is_empty(), "{found:?}");
    }

    let mut found = Vec::new();
    // The UIs, and the application's REST API (the executors page is drawn from it).
    let port = |name: &str| support::var(name);
    let app = format!("http://localhost:{}", port("SPARK_UI_PORT"));
    let apps: Vec<serde_json::Value> = serde_json::from_str(
        &ureq::get(format!("{app}/api/v1/applications"))
            .call()
            .expect("Spark REST API")
            .body_mut()
            .read_to_string()
            .expect("applications"),
    )
    .expect("applications as JSON");
    let mut starts = vec![
        format!("http://localhost:{}/", port("SPARK_MASTER_WEBUI_PORT")),
        format!("http://localhost:{}/", port("SPARK_WORKER_WEBUI_PORT")),
        format!("{app}/"),
        format!("{app}/connect/"),
        format!("{app}/StreamingQuery/"),
        format!("{app}/SQL/"),
        format!("{app}/environment/"),
        format!("{app}/executors/"),
    ];
    for a in &apps {
        let id = a["id"].as_str().expect("app id");
        for api in [
            "environment",
            "allexecutors",
            "jobs",
            "stages?details=true",
            "sql?details=true&planDescription=true",
            "streaming/statistics",
        ] {
            starts.push(format!("{app}/api/v1/applications/{id}/{api}"));
        }
    }
    // Kafka Connect's REST API: the connector's config and its tasks' configs hold
    // only a reference to the PostgreSQL password.
    let connect = format!("http://localhost:{}", port("KAFKA_CONNECT_PORT"));
    let connector = support::var("CDC_CONNECTOR");
    for api in [
        "connectors?expand=info&expand=status".to_string(),
        format!("connectors/{connector}/config"),
        format!("connectors/{connector}/tasks"),
        format!("connectors/{connector}/offsets"),
    ] {
        starts.push(format!("{connect}/{api}"));
    }
    let config = ureq::get(format!("{connect}/connectors/{connector}/config"))
        .call()
        .expect("Kafka Connect REST API")
        .body_mut()
        .read_to_string()
        .expect("connector config");
    assert!(
        config.contains("${env:POSTGRES_PASSWORD}"),
        "the connector config does not reference the password: {config}"
    );
    let pages = crawl(&starts, &secrets, &mut found);
    assert!(pages > 50, "only {pages} pages crawled");

    // Logs of the stack and of the executors, and Spark's event logs.
    let mut files = Vec::new();
    for dir in [".local/logs", ".local/spark/work", ".local/spark/events"] {
        files_under(&root.join(dir), &mut files);
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(root.join(".local/spark/events"))),
        "no Spark event log"
    );
    for f in &files {
        if let Ok(bytes) = read_maybe_compressed(f) {
            hits(
                &String::from_utf8_lossy(&bytes),
                &secrets,
                &f.display().to_string(),
                &mut found,
            );
        }
    }

    // Every process's command line.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    hits(
        &String::from_utf8_lossy(&ps.stdout),
        &secrets,
        "ps -eo args",
        &mut found,
    );

    sqlx::query("DELETE FROM users WHERE email LIKE $1 || '.%'")
        .bind(&topic)
        .execute(&support::pg_pool().await)
        .await
        .expect("clean up");
    support::delete_topic(&topic).await;
    assert!(
        found.is_empty(),
        "secrets exposed ({} pages crawled): {found:#?}",
        pages
    );
}

/// `jobs check --service spark-connect` with these settings in its environment: its
/// exit code and its log.
fn check_spark(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = support::jobs(&["check", "--service", "spark-connect"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jobs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const REFUSED: &str = "requires a token and SPARK_CONNECT_TOKEN is missing or wrong";

#[tokio::test(flavor = "multi_thread")]
async fn spark_connect_refuses_a_client_without_the_token() {
    let remote = support::var("SPARK_REMOTE");
    // The job itself, with the token removed from its environment.
    let (code, stderr) = check_spark(&[("SPARK_CONNECT_TOKEN", "")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(REFUSED), "{stderr}");
    // A wrong token is refused the same way; the right one works.
    let (code, stderr) = check_spark(&[("SPARK_CONNECT_TOKEN", "not-the-token")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("not-the-token"), "{stderr}");
    support::run_ok(&["check", "--service", "spark-connect"]);
    assert!(
        !remote.contains("token="),
        "the token belongs in SPARK_CONNECT_TOKEN"
    );
}

/// The compose network reaches the server by name (`sc://spark-connect:15002`), where
/// the client itself refuses to send a token without TLS; the jobs then send the same
/// `authorization` header themselves. `127.1` is the loopback address under a name the
/// client does not treat as local, so this exercises that path against the real server.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_reaches_a_server_addressed_by_another_name() {
    let remote = support::var("SPARK_REMOTE");
    let port = remote
        .rsplit(':')
        .next()
        .expect("port")
        .trim_end_matches('/');
    let other_name = format!("sc://127.1:{port}");
    let (code, stderr) = check_spark(&[("SPARK_REMOTE", &other_name)]);
    assert_eq!(code, Some(0), "{other_name}: {stderr}");
    assert!(stderr.contains("127.1"), "{stderr}");
    let (code, stderr) = check_spark(&[
        ("SPARK_REMOTE", &other_name),
        ("SPARK_CONNECT_TOKEN", "not-the-token"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(REFUSED), "{stderr}");
}
