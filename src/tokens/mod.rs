//! Tokens: the signing key ring, Cognito-shaped minting, JWKS/discovery
//! publication, and verification of our own and trusted issuers' tokens.
//!
//! Module map (who reads what):
//!
//! - [`keys`]: the key ring (next / current / previous), generation, storage,
//!   RFC 7638 `kid`s. Exposes the public keys of all live stages as a
//!   `jsonwebtoken::jwk::JwkSet` — the one interface between signing and
//!   verification.
//! - [`mint`]: access / id tokens with Cognito's claim sets.
//! - [`publish`]: `GET /.well-known/jwks.json`, `GET /.well-known/openid-configuration`.
//! - [`verify`]: one verifier for every trusted issuer (ours, Cognito, OIDC),
//!   remote JWKS caches, the stable error kinds.
//! - [`cli`]: `session-bridge keys …` and `session-bridge token …`.
//! - [`config`]: the `[tokens]` section of the configuration.

#[cfg(feature = "service")]
pub mod cli;
pub mod config;
pub mod keys;
pub mod mint;
pub mod publish;
pub mod verify;
