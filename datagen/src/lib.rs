//! The platform's data generators as a library, so the `datagen` binary stays thin and
//! the integration tests in `tests/` can reach the same code.
//!
//! - [`pg`]: a seeded, internally consistent e-commerce data set, bulk-loaded into
//!   PostgreSQL with `COPY` in one transaction.
//! - [`kafka`]: user registration events (optionally mixed with malformed ones) for the
//!   `new_user_events` topic.

pub mod cli;
pub mod kafka;
pub mod pg;
pub mod progress;
pub mod shutdown;
