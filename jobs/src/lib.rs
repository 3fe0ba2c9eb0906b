//! The platform's jobs. Each job builds DataFrame plans and sends them to the Spark
//! Connect server, so the Spark cluster does the work; this crate only orchestrates.

pub mod check;
pub mod spark;
