//! The platform's data generators as a library, so the `datagen` binary stays thin and
//! the integration tests in `tests/` can reach the same code.
//!
//! - [`pg`]: a seeded, internally consistent e-commerce data set, bulk-loaded into
//!   PostgreSQL with `COPY` in one transaction.
//! - [`kafka`]: user registration events (optionally mixed with malformed ones) for the
//!   `new_user_events` topic.
//! - [`changes`]: a live workload of inserts, updates and deletes on the PostgreSQL
//!   tables, for change data capture to carry to MySQL.
//! - [`serve`]: a page and a JSON API that run the `kafka` and `pg` generators on demand.

pub mod changes;
pub mod cli;
pub mod kafka;
pub mod pg;
pub mod progress;
pub mod serve;
pub mod shutdown;
