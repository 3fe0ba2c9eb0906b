//! The platform's jobs. Each job builds DataFrame plans and sends them to the Spark
//! Connect server, so the Spark cluster does the work; this crate only orchestrates
//! and verifies.
//!
//! One module per job (`check`, `replicate`, `marts`, `stream`, `cdc`, `summary`, `list`), each with
//! its own `Args`, logic and output; the helpers they share live in modules named for
//! what they are (`spark`, `mysql`, `postgres`, `fingerprint`). `main.rs` only
//! dispatches.

pub mod cdc;
pub mod check;
pub mod dwh;
pub mod fingerprint;
pub mod list;
pub mod marts;
pub mod mysql;
pub mod output;
pub mod postgres;
pub mod replicate;
pub mod settings;
pub mod spark;
pub mod stream;
pub mod summary;

pub use settings::Settings;
