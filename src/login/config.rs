//! `[login]`: where the service's login endpoint checks passwords.

use serde::Deserialize;

use super::cognito::CognitoLoginConfig;
use super::oidc::OidcLoginConfig;
use crate::config::Problems;
use crate::tokens::verify::TrustConfig;

/// `[login]`.
///
/// ```toml
/// [login]
/// source = "cognito"            # or "builtin" (the default: the users file)
///
/// [login.cognito]
/// region = "eu-west-1"
/// user_pool_id = "eu-west-1_AbCdEf123"
/// client_id = "1example23456789"
/// # client_secret_file = "/run/secrets/cognito-client-secret"
/// ```
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoginConfig {
    /// Which password source `POST /login` uses.
    pub source: LoginSourceKind,
    /// `[login.cognito]`, for `source = "cognito"`.
    pub cognito: Option<CognitoLoginConfig>,
    /// `[login.oidc]`: sign-in with an OpenID Connect provider (`/login/oidc`),
    /// whatever the password source.
    pub oidc: Option<OidcLoginConfig>,
}

/// Password sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginSourceKind {
    /// The built-in users file.
    #[default]
    Builtin,
    /// A Cognito user pool (`USER_PASSWORD_AUTH`).
    Cognito,
    /// No password logins (tokens from trusted issuers only).
    None,
}

impl LoginConfig {
    /// Record problems under `key`; `trust` is the configured trusted issuers
    /// (a Cognito pool used for logins must be one).
    pub fn validate(&self, key: &str, trust: &[TrustConfig], problems: &mut Problems) {
        if let Some(oidc) = &self.oidc {
            oidc.validate(&format!("{key}.oidc"), trust, problems);
        }
        match (self.source, &self.cognito) {
            (LoginSourceKind::Cognito, None) => {
                problems.push(
                    format!("{key}.cognito"),
                    "required when login.source = \"cognito\"",
                );
            }
            (LoginSourceKind::Cognito, Some(cognito)) => {
                cognito.validate(&format!("{key}.cognito"), problems);
                let trusted = trust.iter().any(|t| match t {
                    TrustConfig::Cognito(c) => {
                        c.user_pool_id == cognito.user_pool_id
                            && c.client_ids.contains(&cognito.client_id)
                    }
                    _ => false,
                });
                if !trusted {
                    problems.push(
                        format!("{key}.cognito.user_pool_id"),
                        "add a [[tokens.trust]] entry with kind = \"cognito\", this user_pool_id and this client_id in client_ids",
                    );
                }
            }
            _ => {}
        }
    }
}
