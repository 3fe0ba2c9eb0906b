//! Named Spark Connect sessions outlive the server's idle timeout: a Spark Connect
//! server refuses a session id it has closed, so a job attaching to a named session
//! must move on to the next generation instead of failing until the server restarts.
//! Runs a throwaway Connect server (local mode, 8 s session timeout) from the local
//! stack's Spark installation, next to the stack's own server.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs::spark;

/// A Connect server process, killed when dropped.
struct Server {
    child: Child,
    remote: String,
}

impl Server {
    fn settings(&self) -> common::SparkSettings {
        common::SparkSettings {
            remote: self.remote.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn spark_home() -> String {
    let root = support::workspace_root();
    let out = Command::new("bash")
        .args(["-c", "source infra/local/lib.sh >/dev/null && spark_home"])
        .env("ROOT", &root)
        .env("HERE", root.join("infra/local"))
        .current_dir(&root)
        .output()
        .expect("bash");
    assert!(out.status.success(), "cannot locate the stack's Spark");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start_server(session_timeout: &str) -> Server {
    let port = free_port();
    let log = std::fs::File::create(
        support::workspace_root().join(".local/logs/test-short-session-connect.log"),
    )
    .expect("log file");
    let child = Command::new(format!("{}/bin/spark-submit", spark_home()))
        .env_remove("SPARK_REMOTE")
        .env_remove("SPARK_DAEMON_MEMORY")
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args([
            "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master",
            "local[1]",
            "--driver-memory",
            "512m",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            &format!("spark.connect.grpc.binding.port={port}"),
            "--conf",
            &format!("spark.connect.session.manager.defaultSessionTimeout={session_timeout}"),
            "--conf",
            "spark.connect.session.manager.maintenanceInterval=1s",
            "spark-internal",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spark-submit");
    let server = Server {
        child,
        remote: format!("sc://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the test Connect server did not start; see .local/logs/test-short-session-connect.log"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    server
}

async fn count_range(session: &spark::SparkSession) -> i64 {
    let s = session.clone();
    spark::blocking(move || s.range(7)?.count())
        .await
        .expect("a query in the session")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_session_closed_by_the_server_moves_to_the_next_generation() {
    let server = start_server("8s");
    let key = support::unique("session-test");

    let first = spark::connect_named(&server.settings(), "session-test", &key)
        .await
        .expect("first attach");
    assert_eq!(first.session_id(), spark::session_id(&key, 0));
    assert_eq!(count_range(&first).await, 7);

    // Another attach while the session is alive lands in the same session.
    let again = spark::connect_named(&server.settings(), "session-test", &key)
        .await
        .expect("second attach");
    assert_eq!(again.session_id(), spark::session_id(&key, 0));
    drop((first, again));

    // Idle past the timeout: the server closes generation 0 and refuses its id.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let stale = spark::connect_to_session(&server.settings(), &spark::session_id(&key, 0))
        .await
        .expect("connect");
    let err = spark::blocking(move || stale.version())
        .await
        .expect_err("the server should refuse a closed session");
    assert!(format!("{err:#}").contains("SESSION_CLOSED"), "{err:#}");

    let next = spark::connect_named(&server.settings(), "session-test", &key)
        .await
        .expect("attach after the timeout");
    assert_eq!(next.session_id(), spark::session_id(&key, 1));
    assert_eq!(count_range(&next).await, 7);
}
