//! `datagen kafka`: user registration events for the stream, valid or (on request)
//! malformed in recognisable ways.

mod args;
pub mod events;
mod produce;

pub use args::KafkaArgs;
pub use events::{Event, EventGen, EventKind, KIND_HEADER};
pub use produce::{KafkaError, Stats, run};
