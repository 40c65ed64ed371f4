//! Cognito user pool logins with `InitiateAuth` `USER_PASSWORD_AUTH`, the
//! flow legacy PHP apps use through the AWS SDK.
//!
//! `InitiateAuth` is an unsigned Cognito API call (it authenticates with the
//! user's password, not AWS credentials), so it is one JSON POST; the AWS
//! SDK's Cognito client would add a large dependency for it. The ID token it
//! returns is verified like any other token of the pool (the pool must be a
//! trusted issuer), and the identity is read from it.

use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Attempt, AuthenticatedUser, LoginError, Password, PasswordSource};
use crate::problems::Problems;
use crate::tokens::verify::{TokenUse, Verifier};

/// `[login.cognito]`.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CognitoLoginConfig {
    /// AWS region of the pool.
    pub region: String,
    /// The pool id (must also be a `[[tokens.trust]]` entry).
    pub user_pool_id: String,
    /// The app client id (with `ALLOW_USER_PASSWORD_AUTH`).
    pub client_id: String,
    /// File holding the app client's secret, when it has one (never put the
    /// secret itself in the config file).
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// Endpoint override (a local Cognito emulator); default
    /// `https://cognito-idp.<region>.amazonaws.com/`.
    #[serde(default)]
    pub endpoint_url: Option<url::Url>,
    /// Timeout of the call.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for CognitoLoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoLoginConfig")
            .field("region", &self.region)
            .field("user_pool_id", &self.user_pool_id)
            .field("client_id", &self.client_id)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl CognitoLoginConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            problems.push(format!("{key}.region"), "must look like us-east-1");
        }
        if !self.user_pool_id.starts_with(&format!("{}_", self.region)) {
            problems.push(
                format!("{key}.user_pool_id"),
                "must look like <region>_AbCdEf123",
            );
        }
        if self.client_id.is_empty() {
            problems.push(format!("{key}.client_id"), "required");
        }
        if let Some(url) = &self.endpoint_url
            && !matches!(url.scheme(), "http" | "https")
        {
            problems.push(
                format!("{key}.endpoint_url"),
                "must be an http:// or https:// URL",
            );
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            problems.push(format!("{key}.timeout"), "must be between 1ms and 60s");
        }
    }

    /// The pool's issuer.
    pub fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            self.region, self.user_pool_id
        )
    }
}

/// Password logins against a Cognito user pool.
pub struct CognitoPasswordSource {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: Option<Zeroizing<String>>,
    verifier: Verifier,
}

impl std::fmt::Debug for CognitoPasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoPasswordSource")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why the source could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CognitoSetupError {
    /// The client secret file could not be read.
    #[error("cannot read login.cognito.client_secret_file {0}")]
    Secret(std::path::PathBuf, #[source] std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuthResponse {
    authentication_result: Option<AuthenticationResult>,
    challenge_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AuthenticationResult {
    id_token: String,
}

#[derive(Deserialize)]
struct AwsError {
    #[serde(rename = "__type", default)]
    kind: String,
}

impl CognitoPasswordSource {
    /// A source for `cfg`; `verifier` must trust the pool.
    pub fn new(cfg: &CognitoLoginConfig, verifier: Verifier) -> Result<Self, CognitoSetupError> {
        let client_secret = match &cfg.client_secret_file {
            Some(path) => Some(Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| CognitoSetupError::Secret(path.clone(), e))?
                    .trim()
                    .to_owned(),
            )),
            None => None,
        };
        let endpoint = cfg.endpoint_url.as_ref().map_or_else(
            || format!("https://cognito-idp.{}.amazonaws.com/", cfg.region),
            |u| u.to_string(),
        );
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(CognitoSetupError::Http)?;
        Ok(Self {
            http,
            endpoint,
            client_id: cfg.client_id.clone(),
            client_secret,
            verifier,
        })
    }

    /// `SECRET_HASH` = Base64(HMAC-SHA256(secret, username + client_id)).
    fn secret_hash(&self, username: &str) -> Option<String> {
        let secret = self.client_secret.as_ref()?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let tag = hmac::sign(&key, format!("{username}{}", self.client_id).as_bytes());
        Some(base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> LoginError {
    LoginError::Unavailable(Box::new(e))
}

#[async_trait]
impl PasswordSource for CognitoPasswordSource {
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
        _attempt: Attempt,
    ) -> Result<AuthenticatedUser, LoginError> {
        let mut params = json!({ "USERNAME": username, "PASSWORD": password.expose() });
        if let Some(hash) = self.secret_hash(username) {
            params["SECRET_HASH"] = json!(hash);
        }
        let body = json!({ "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": self.client_id, "AuthParameters": params });
        let response = self
            .http
            .post(&self.endpoint)
            .header(
                "X-Amz-Target",
                "AWSCognitoIdentityProviderService.InitiateAuth",
            )
            .header("Content-Type", "application/x-amz-json-1.1")
            .json(&body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unavailable)?;
        if !status.is_success() {
            let kind = serde_json::from_slice::<AwsError>(&bytes)
                .map(|e| e.kind)
                .unwrap_or_default();
            // `__type` may be namespaced: `…#NotAuthorizedException`.
            let kind = kind.rsplit('#').next().unwrap_or_default();
            return Err(match kind {
                "NotAuthorizedException"
                | "UserNotFoundException"
                | "UserNotConfirmedException" => LoginError::InvalidCredentials,
                "TooManyRequestsException" | "LimitExceededException" => LoginError::RateLimited {
                    retry_after: Duration::from_secs(30),
                },
                "PasswordResetRequiredException" => {
                    LoginError::ChallengeRequired("password reset".to_owned())
                }
                other => {
                    tracing::warn!(
                        status = status.as_u16(),
                        error = other,
                        "Cognito InitiateAuth failed"
                    );
                    LoginError::Unavailable(format!("Cognito answered {status} {other}").into())
                }
            });
        }
        let parsed: InitiateAuthResponse = serde_json::from_slice(&bytes).map_err(unavailable)?;
        let Some(result) = parsed.authentication_result else {
            return Err(LoginError::ChallengeRequired(
                parsed
                    .challenge_name
                    .unwrap_or_else(|| "unknown".to_owned()),
            ));
        };
        let verified = self
            .verifier
            .verify_as(&result.id_token, TokenUse::Id)
            .await
            .map_err(|e| {
                tracing::warn!(
                    kind = e.kind().as_str(),
                    "Cognito returned an ID token that does not verify"
                );
                LoginError::Unavailable(Box::new(e))
            })?;
        let c = verified.claims;
        Ok(AuthenticatedUser {
            username: c.username.clone().or_else(|| Some(username.to_owned())),
            sub: c.sub,
            groups: c.groups,
            email: c.email,
            issuer: c.iss,
            auth_time: c
                .auth_time
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .unwrap_or_else(OffsetDateTime::now_utc),
        })
    }
}
