//! OpenID Connect logins: the authorization-code flow with PKCE (S256),
//! `state` and `nonce`, against one configured provider (`[login.oidc]`).
//!
//! [`OidcLogin::begin`] builds the authorization request and the
//! [`PendingLogin`] the caller keeps server-side until the browser comes
//! back; [`OidcLogin::finish`] checks the callback against it, exchanges the
//! code at the token endpoint and verifies the ID token with the bridge's
//! [`Verifier`] (the provider must be a trusted issuer) before reading the
//! identity from it, completed from the UserInfo endpoint when the provider
//! has one (OIDC Core §5.4: with the code flow, providers may return the
//! profile, email and groups claims only there).
//!
//! The `oauth2` crate builds the URLs, the PKCE pair and the token request;
//! its HTTP goes through our own reqwest client (timeouts, no redirects,
//! bounded bodies) rather than the reqwest version it would bring.

mod config;
mod id_token;
mod provider;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

pub use config::{OidcLoginConfig, RESERVED_PATHS};
pub use provider::FetchError;

use super::AuthenticatedUser;
use crate::tokens::verify::{TokenUse, Verifier, VerifyError};
use provider::{Provider, ProviderCache, Registration};

/// How long a started login may take before its callback is refused.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// A login started by [`OidcLogin::begin`]: kept server-side (it holds the
/// PKCE verifier) until the callback, and used once.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Where to send the browser afterwards (already a safe local path).
    pub next: String,
    /// When the login started (Unix seconds).
    pub created_at: i64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("next", &self.next)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Why an OIDC login failed. Clients see only a fixed page per kind; the
/// details go to the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The callback's `state` does not match, or the login is too old.
    #[error("state does not match the pending login, or the login expired")]
    InvalidState,
    /// The callback's `iss` parameter names another issuer (mix-up), or is
    /// missing although the provider promised it.
    #[error("the authorization response names another issuer")]
    ResponseIssuer,
    /// The provider's discovery document could not be fetched.
    #[error("cannot fetch the provider's discovery document")]
    Discovery(#[source] FetchError),
    /// The discovery document is unusable (another issuer, bad endpoints).
    #[error("the provider's discovery document is unusable: {0}")]
    BadDiscovery(&'static str),
    /// The token endpoint refused the code (`invalid_grant`: used, expired,
    /// or not ours).
    #[error("the token endpoint refused the code: {0}")]
    CodeRejected(String),
    /// The token endpoint could not be reached or answered nonsense.
    #[error("token request failed")]
    TokenRequest(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The token response has no ID token.
    #[error("the token response has no id_token")]
    NoIdToken,
    /// The ID token did not verify.
    #[error("the ID token did not verify")]
    IdToken(#[source] VerifyError),
    /// The ID token verified but is not for this login (issuer, audience,
    /// authorized party).
    #[error("the ID token is not for this client: {0}")]
    WrongToken(&'static str),
    /// The ID token's `nonce` is missing or not the one sent.
    #[error("the ID token's nonce does not match")]
    Nonce,
    /// The UserInfo endpoint could not be reached or answered nonsense.
    #[error("userinfo request failed")]
    UserInfo(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why the OIDC login could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcSetupError {
    /// The client secret file could not be read or is empty.
    #[error("cannot read login.oidc.client_secret_file {0}")]
    Secret(PathBuf, #[source] std::io::Error),
    /// The redirect URL is not usable.
    #[error("invalid login.oidc.redirect_url: {0}")]
    RedirectUrl(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// The OIDC login of one service: our registration, the cached discovery
/// document and the verifier for ID tokens.
pub struct OidcLogin {
    registration: Registration,
    scopes: Vec<String>,
    display_name: String,
    http: reqwest::Client,
    verifier: Verifier,
    provider: ProviderCache,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("issuer", &self.registration.issuer)
            .field("client_id", &self.registration.client_id)
            .field("redirect_url", &self.registration.redirect_url.as_str())
            .finish_non_exhaustive()
    }
}

impl OidcLogin {
    /// Set up the login for `cfg`; `public_url` is the service's public URL
    /// (base of the default redirect URL); `verifier` must trust the issuer.
    /// Reads the client secret; the provider is contacted on first use.
    ///
    /// ```no_run
    /// # fn f(cfg: &session_bridge::login::oidc::OidcLoginConfig, verifier: session_bridge::tokens::verify::Verifier) -> Result<(), Box<dyn std::error::Error>> {
    /// use session_bridge::login::oidc::OidcLogin;
    /// let login = OidcLogin::new(cfg, "https://app.example.com", verifier)?;
    /// assert_eq!(login.callback_path(), "/callback");
    /// # Ok(()) }
    /// ```
    pub fn new(
        cfg: &OidcLoginConfig,
        public_url: &str,
        verifier: Verifier,
    ) -> Result<Self, OidcSetupError> {
        let secret = std::fs::read_to_string(&cfg.client_secret_file)
            .map_err(|e| OidcSetupError::Secret(cfg.client_secret_file.clone(), e))?;
        let secret = Zeroizing::new(secret.trim().to_owned());
        if secret.is_empty() {
            return Err(OidcSetupError::Secret(
                cfg.client_secret_file.clone(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
            ));
        }
        let redirect_url = match &cfg.redirect_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("{}/callback", public_url.trim_end_matches('/')))
                .map_err(|e| OidcSetupError::RedirectUrl(e.to_string()))?,
        };
        config::check_callback_path(redirect_url.path())
            .map_err(|m| OidcSetupError::RedirectUrl(m.to_owned()))?;
        let display_name = cfg.display_name.clone().unwrap_or_else(|| {
            Url::parse(&cfg.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "OpenID Connect".to_owned())
        });
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("session-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(OidcSetupError::Http)?;
        Ok(Self {
            registration: Registration {
                issuer: cfg.issuer.clone(),
                client_id: cfg.client_id.clone(),
                client_secret: secret,
                redirect_url,
            },
            scopes: cfg.scopes.clone(),
            display_name,
            http,
            verifier,
            provider: ProviderCache::default(),
        })
    }

    /// The name shown on the login page.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The path of the redirect URL: the route of the callback.
    pub fn callback_path(&self) -> &str {
        self.registration.redirect_url.path()
    }

    /// Start a login that ends at `next` (a safe local path): the URL to
    /// send the browser to, and what to keep until the callback.
    pub async fn begin(&self, next: String) -> Result<(Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        Ok(provider.authorization_request(&self.scopes, next))
    }

    /// Finish a login: check the callback's `state` (and `iss` when sent)
    /// against `pending`, exchange `code`, verify the ID token and its nonce.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
        iss: Option<&str>,
    ) -> Result<AuthenticatedUser, OidcError> {
        let age = OffsetDateTime::now_utc().unix_timestamp() - pending.created_at;
        let fresh = (0..=i64::try_from(PENDING_TTL.as_secs()).unwrap_or(i64::MAX)).contains(&age);
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) || !fresh {
            return Err(OidcError::InvalidState);
        }
        let provider = self.provider().await?;
        let issuer = &self.registration.issuer;
        match iss {
            Some(iss) if iss != issuer => return Err(OidcError::ResponseIssuer),
            None if provider.iss_in_response => return Err(OidcError::ResponseIssuer),
            _ => {}
        }
        let tokens = provider
            .exchange(&self.http, code, &pending.pkce_verifier)
            .await?;
        let verified = self
            .verifier
            .verify_as(&tokens.id_token, TokenUse::Id)
            .await
            .map_err(OidcError::IdToken)?;
        let raw = verified.raw_claims();
        id_token::check_id_token(
            &verified.claims,
            &raw,
            issuer,
            &self.registration.client_id,
            &pending.nonce,
        )?;
        let info = provider.userinfo(&self.http, &tokens.access_token).await?;
        id_token::user_from(&verified.claims, &raw, info.as_ref())
    }

    async fn provider(&self) -> Result<std::sync::Arc<Provider>, OidcError> {
        self.provider
            .get(|| Provider::discover(&self.http, &self.registration))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn setup_reads_the_secret_and_derives_the_callback() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let mut cfg: OidcLoginConfig = figment::Figment::from(figment::providers::Serialized::defaults(
            serde_json::json!({"issuer": "https://idp.example.com", "client_id": "bridge", "client_secret_file": secret}),
        ))
        .extract()
        .unwrap();
        let verifier = Verifier::new(&Default::default(), &[], None).unwrap();
        let login = OidcLogin::new(&cfg, "https://app.example.com/", verifier.clone()).unwrap();
        assert_eq!(login.callback_path(), "/callback");
        assert_eq!(login.display_name(), "idp.example.com");
        assert_eq!(&*login.registration.client_secret, "s3cret");
        assert!(!format!("{login:?}").contains("s3cret"));

        cfg.redirect_url = Some(Url::parse("https://app.example.com/auth/done").unwrap());
        cfg.display_name = Some("Example SSO".to_owned());
        let login = OidcLogin::new(&cfg, "https://ignored.example.com", verifier.clone()).unwrap();
        assert_eq!(login.callback_path(), "/auth/done");
        assert_eq!(login.display_name(), "Example SSO");

        std::fs::write(&secret, " \n").unwrap();
        assert!(matches!(
            OidcLogin::new(&cfg, "https://app.example.com", verifier.clone()),
            Err(OidcSetupError::Secret(..))
        ));
        cfg.client_secret_file = dir.path().join("missing");
        assert!(matches!(
            OidcLogin::new(&cfg, "https://app.example.com", verifier),
            Err(OidcSetupError::Secret(..))
        ));
    }
}
