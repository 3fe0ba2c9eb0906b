//! Code shared by the `jobs` and `datagen` binaries: typed settings read from the
//! environment (`.env`) with CLI overrides, the schema's names, and logging setup.

pub mod schema;
pub mod secret;
pub mod settings;
pub mod telemetry;

pub use secret::Secret;
pub use settings::{KafkaSettings, MysqlSettings, PostgresSettings, SettingsError, SparkSettings};

/// Loads `.env` from the working directory or one of its parents. Variables that
/// are already set in the environment win, as they do for docker compose.
pub fn load_dotenv() {
    // A missing .env is fine: every setting can come from the environment alone.
    let _ = dotenvy::dotenv();
}
