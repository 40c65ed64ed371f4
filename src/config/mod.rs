//! Configuration.
mod problems;
pub use problems::{Problem, Problems};
