//! The platform's jobs. Each job builds DataFrame plans and sends them to the Spark
//! Connect server, so the Spark cluster does the work; this crate only orchestrates
//! and verifies.

pub mod check;
pub mod checksum;
pub mod events;
pub mod jdbc;
pub mod marts;
pub mod mysql_swap;
pub mod outcome;
pub mod replicate;
pub mod spark;
pub mod stream;
pub mod summary;
