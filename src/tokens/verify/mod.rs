//! Verification of our own and trusted issuers' tokens.

mod config;

pub use config::{CognitoTrust, MAX_LEEWAY, OidcTrust, TokenUseSetting, TrustConfig, VerifyConfig};

/// What a token is for, in Cognito's terms (`token_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    /// An access token: names the app client in `client_id`.
    Access,
    /// An ID token: names the app client in `aud`.
    Id,
}
