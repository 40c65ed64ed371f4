//! Identity sources: who may log in, and how their password is checked.
//!
//! Every source that checks a username and password (the built-in users
//! file, a Cognito user pool's `USER_PASSWORD_AUTH`) implements
//! [`PasswordSource`], so the login endpoint does not care which one is
//! configured and switching from one to the other is a configuration change.

pub mod cognito;
pub mod config;
pub mod oidc;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

/// A password as typed by the user: zeroized on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wrap a password.
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    /// The password text, for the one place that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Who is trying to log in, for rate limiting and logs.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// The client's address (as seen by the service, or from a trusted
    /// proxy's header).
    pub client: IpAddr,
}

/// A user whose credentials were accepted: the crate's one principal type.
pub use crate::identity::Principal as AuthenticatedUser;

/// Why a login was refused. Clients see only the kind (and `Retry-After`);
/// sources keep details in their logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many attempts for this user or from this client.
    #[error("too many login attempts")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// The source needs something the bridge cannot do in this flow
    /// (e.g. Cognito asks for a new password or an MFA code).
    #[error("the identity provider requires an unsupported step: {0}")]
    ChallengeRequired(String),
    /// The source could not be reached or failed.
    #[error("identity source unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Checks a username and password.
#[async_trait]
pub trait PasswordSource: std::fmt::Debug + Send + Sync + 'static {
    /// Check `password` for `username`. Implementations take the same time
    /// whether or not the user exists, and apply their own rate limits.
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
        attempt: Attempt,
    ) -> Result<AuthenticatedUser, LoginError>;
}
