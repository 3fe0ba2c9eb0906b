//! `datagen pg`: generate the data set in memory, then load it with COPY inside one
//! transaction for all five tables, so a run either fills everything or nothing.

mod args;
pub mod copy;
pub mod generate;
mod load;
mod nodelay;

pub use args::{DEFAULT_SEED, PgArgs, VolumeArgs};
pub use generate::{DEFAULT_VOLUMES, DataSet, Volumes, generate};
pub use load::{Outcome, PgError, run};
