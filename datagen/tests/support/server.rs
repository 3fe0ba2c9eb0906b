//! `datagen serve` started as a real process for a test: on a free port, with the
//! test's own settings (its Kafka topic, its PostgreSQL schema, its limits) over the
//! real `.env`; stopped when the guard goes away.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts the server with `env` over `.env` and waits for `/health`.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = super::workspace_root()
            .join("target")
            .join(format!("serve-test-{name}-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = super::datagen(&["serve"]);
        cmd.env("GENERATOR_PORT", port.to_string())
            .env("GENERATOR_BIND", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start datagen serve");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/health", server.base)).await
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "datagen serve did not answer: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a run request; (status, body).
    pub async fn post_run(&self, body: &Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.url("/api/runs"))
            .json(body)
            .send()
            .await
            .expect("POST /api/runs");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(self.url(path)).await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    /// Polls the run until it is no longer running (at most `secs`).
    pub async fn wait_end(&self, id: u64, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, run) = self.get(&format!("/api/runs/{id}")).await;
            assert_eq!(status, 200, "{run}");
            if run["status"] != "running" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} still running: {run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "datagen serve did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
