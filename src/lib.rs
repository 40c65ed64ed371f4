//! session-bridge: one authenticated identity for a legacy stack on
//! server-side sessions and an API stack on JWTs, so a team can move page by
//! page from one to the other without logging anyone out.
//!
//! # As a library
//!
//! Add the crate without its service and with the store you use
//! (`default-features = false`, plus `embedded`, `redis` or `dynamodb`; the
//! memory store is always there). Build a [`Bridge`](bridge::Bridge), mount
//! [`BridgeLayer`](bridge::BridgeLayer), and handlers take an [`Identity`]
//! (or `Option<Identity>`) that is the same whether a session cookie, the
//! token cookie or an `Authorization: Bearer` header proved it. They keep
//! their own data in the same session record with tower-sessions'
//! [`Session`], loaded once per request.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use session_bridge::bridge::{Bridge, BridgeLayer, Mode};
//! use session_bridge::tokens::{config::SigningAlgorithm, keys::KeyRing};
//! use session_bridge::{Identity, Session};
//!
//! async fn me(identity: Identity, session: Session) -> String {
//!     let visits: u32 = session.get("visits").await.ok().flatten().unwrap_or(0);
//!     let _ = session.insert("visits", visits + 1).await;
//!     format!("{} via {} ({visits} visits)", identity.sub, identity.credential.kind.as_str())
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = Bridge::builder()
//!     .store(session_bridge_store::MemoryStore::default())
//!     .keys(Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256)?))
//!     .issuer("https://app.example.com")
//!     .route("/api/*", Mode::Token)
//!     .route("/account/*", Mode::Session)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/api/me", get(me))
//!     .layer(BridgeLayer::new(bridge));
//! # let _ = app; Ok(()) }
//! ```
//!
//! The route policy says which credentials each path accepts during the
//! migration: `session`, `token`, `either` (both, keeping the other
//! credential alive), `shadow` (enforce one, count where the other would
//! disagree) or `public`. [`Bridge::login`](bridge::Bridge::login) and
//! [`Bridge::logout`](bridge::Bridge::logout) start and end a login on the
//! request's session. Other places a credential can come from (a legacy
//! app's own sessions) plug in as a
//! [`CredentialSource`](bridge::CredentialSource). A complete app is in
//! `examples/layer_only.rs`.
//!
//! # The request path
//!
//! [`bridge`] reads top to bottom: policy → credentials → token verification
//! ([`tokens::verify`]) or session load ([`bridge::sessions`]) → revocation
//! (killed token ids and per-user epochs in a
//! [`session_bridge_store::RevocationStore`]) → CSRF for cookie-authenticated
//! state changes → [`Identity`] and [`Session`] → handler.
//!
//! # As a service
//!
//! With the default `service` feature, `session-bridge serve` exposes the
//! same core over HTTP for stacks that do not run Rust (login and logout,
//! exchange, forward-auth, a reverse proxy, JWKS, metrics); see the README.
//! It builds its bridge through the same [`BridgeBuilder`](bridge::BridgeBuilder).

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
