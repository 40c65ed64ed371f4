//! session-bridge
pub mod config;
pub mod tokens;
