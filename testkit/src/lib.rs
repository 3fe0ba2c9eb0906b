//! What the integration tests of `jobs` and `datagen` share. They run against the local
//! stack (`make up`) and read the real `.env`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A binary under test (`env!("CARGO_BIN_EXE_<name>")` of the calling test), run from
/// the workspace root so it reads the real `.env`, logging at info without colours.
pub fn binary(exe: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(workspace_root())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

/// A setting of `.env` (or the environment, which wins).
pub fn var(name: &str) -> String {
    common::load_dotenv();
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (.env)"))
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

fn kafka_admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", var("KAFKA_BOOTSTRAP_SERVERS"))
        .create()
        .expect("Kafka admin client")
}

/// Creates the topic on the local stack's Kafka.
pub async fn create_topic(name: &str, partitions: i32) {
    let results = kafka_admin()
        .create_topics(
            [&NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topic");
    for r in results {
        r.expect("topic created");
    }
}

/// Deletes the topic (best effort: cleanup after a test).
pub async fn delete_topic(name: &str) {
    let _ = kafka_admin()
        .delete_topics(&[name], &AdminOptions::new())
        .await;
}
