//! The generator's page in a real headless Chromium (WebDriver: Debian's chromium and
//! chromium-driver, installed by `make test` through `infra/local/stack.sh
//! install-browser`): fill the form, start a run, watch the progress reach the end.
//! Leaves a screenshot in target/screenshots/generator.png.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use support::read_all;
use support::server::Server;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn the_page_starts_a_run_and_shows_it_to_the_end() {
    let topic = testkit::unique("serve_test_browser");
    testkit::create_topic(&topic, 1).await;
    let server = Server::start("browser", &[("KAFKA_TOPIC", &topic)]).await;

    let port = free_port();
    let driver = Driver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; make test installs it)"),
    );
    let caps = json!({"goog:chromeOptions": {"args": [
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"
    ]}});
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps.as_object().cloned().unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(20);
    let browser = loop {
        match builder.connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    };

    browser.goto(&server.url("/")).await.unwrap();
    let set = |id: &'static str, value: &'static str| {
        let browser = browser.clone();
        async move {
            let field = browser.find(Locator::Id(id)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(value).await.unwrap();
        }
    };
    set("count", "3000").await;
    set("rate", "1000").await;
    set("bad_ratio", "0.2").await;
    browser
        .find(Locator::Id("start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Progress shows while it runs, and the end when it is done.
    let mut seen_running_with_progress = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = browser
            .find(Locator::Id("run-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let acked: u64 = browser
            .find(Locator::Id("run-acked"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap_or(0);
        if status == "running" && acked > 0 && acked < 3000 {
            seen_running_with_progress = true;
        }
        if !status.is_empty() && status != "running" {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not end on the page");
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(status, "succeeded");
    assert!(
        seen_running_with_progress,
        "the page showed the run under way"
    );
    let text = |id: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .find(Locator::Id(id))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(text("run-acked").await, "3000");
    assert_eq!(text("run-failed").await, "0");
    assert!(text("run-breakdown").await.contains("valid"));
    // The list of recent runs shows it too.
    let list = browser
        .find(Locator::Css("#runs tbody"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("succeeded"), "{list}");

    let png = browser.screenshot().await.unwrap();
    let dir = support::workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("generator.png"), png).unwrap();
    browser.close().await.unwrap();
    drop(driver);

    assert_eq!(
        read_all(&topic, 3000).len(),
        3000,
        "the events are in Kafka"
    );
    testkit::delete_topic(&topic).await;
    assert!(server.stop().success());
}
