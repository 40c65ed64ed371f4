//! session-bridge
pub mod bridge;
pub mod config;
pub mod identity;
pub mod login;
pub mod service;
pub mod stores;
pub mod telemetry;
pub mod tokens;
pub mod users;

pub use identity::{Credential, CredentialKind, Identity};

/// An error and its sources on one line, for logs (`a: b: c`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
