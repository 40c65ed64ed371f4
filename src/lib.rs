//! session-bridge: one authenticated identity for a legacy stack on
//! server-side sessions and an API stack on JWTs, so a team can move page by
//! page from one to the other without logging anyone out.
//!
//! # As a library
//!
//! Mount [`bridge::BridgeLayer`] on an axum router; handlers take an
//! [`Identity`] (or `Option<Identity>`) and get the same principal whether a
//! session cookie, the token cookie or an `Authorization: Bearer` header
//! proved it. The route policy ([`bridge::RoutePolicy`], from `[policy]`)
//! says which credentials each path accepts during the migration:
//! `session`, `token`, `either` (both, keeping the other credential alive),
//! `shadow` (enforce one, count where the other would disagree) or `public`.
//!
//! ```no_run
//! # async fn demo(config: session_bridge::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use session_bridge::{Identity, bridge::BridgeLayer, service::{self, AppState}};
//! use session_bridge::{stores::Stores, tokens::keys::KeyRing};
//!
//! async fn me(identity: Identity) -> String {
//!     format!("{} via {}", identity.sub, identity.credential.kind.as_str())
//! }
//!
//! let stores = Stores::open(&config).await?;
//! let (keys, _) = KeyRing::load_or_generate(&config.tokens, &config.data_dir)?;
//! let (state, _) = AppState::build(&config, stores, Arc::new(keys), config.public_url()).await?;
//! let app = Router::new()
//!     .route("/api/me", get(me))
//!     .layer(BridgeLayer::new(state.bridge.clone()));
//! // Login, logout, exchange, JWKS and metrics endpoints:
//! let app = service::router(state).merge(app);
//! # let _ = app; Ok(()) }
//! ```
//!
//! A complete app is in `examples/legacy_and_api.rs`.
//!
//! # The request path
//!
//! [`bridge`] reads top to bottom: policy → credentials → token verification
//! ([`tokens::verify`]) or session load ([`bridge::sessions`]) → revocation
//! (killed token ids and per-user epochs in a
//! [`session_bridge_store::RevocationStore`]) → CSRF for cookie-authenticated
//! state changes → [`Identity`] → handler.
//!
//! # As a service
//!
//! `session-bridge serve` ([`service`]) exposes the same core over HTTP for
//! stacks that do not run Rust; see the README.
// The core: what a library user compiles.
pub mod bridge;
pub mod identity;
mod private_file;
pub mod problems;
pub mod tokens;

// The service and what only it needs.
#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "legacy-php")]
pub mod legacy;
#[cfg(feature = "service")]
pub mod login;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod stores;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(feature = "service")]
pub mod users;

pub use bridge::Session;
pub use identity::{Credential, CredentialKind, Identity, Principal};

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
