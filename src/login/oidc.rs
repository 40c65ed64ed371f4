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
//! its HTTP goes through the service's own reqwest client (timeouts, no
//! redirects, bounded bodies).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

use super::AuthenticatedUser;
use crate::config::Problems;
use crate::tokens::verify::{Claims, TokenUse, TrustConfig, Verifier, VerifyError};

/// How long a started login may take before its callback is refused.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// After a failed discovery fetch, callers get the last good document (or an
/// error) for this long instead of another request to the provider.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// Largest discovery document or token response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Paths the service serves itself: a callback there would shadow them.
pub const RESERVED_PATHS: &[&str] = &[
    "/",
    "/login",
    "/login/oidc",
    "/logout",
    "/logout/all",
    "/token",
    "/session",
    "/healthz",
    "/readyz",
    "/metrics",
    crate::tokens::publish::JWKS_PATH,
    crate::tokens::publish::DISCOVERY_PATH,
];

/// `[login.oidc]`: an OpenID Connect provider users sign in with.
///
/// ```toml
/// [login.oidc]
/// issuer = "https://login.example.com"
/// client_id = "session-bridge"
/// client_secret_file = "/run/secrets/oidc-client-secret"
/// # scopes = ["openid", "profile", "email"]
/// # redirect_url = "https://app.example.com/callback"   # default <public_url>/callback
/// # display_name = "Example SSO"
///
/// [[tokens.trust]]                 # required: the provider's ID tokens are verified as trusted tokens
/// kind = "oidc"
/// issuer = "https://login.example.com"
/// audiences = ["session-bridge"]
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcLoginConfig {
    /// The provider's issuer, exactly as in its discovery document and its
    /// tokens' `iss`.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// File holding the client secret (never the secret itself in the
    /// configuration).
    pub client_secret_file: PathBuf,
    /// Scopes requested (default `openid profile email`; `openid` required).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back (default
    /// `<public_url>/callback`); its path is the callback route.
    #[serde(default)]
    pub redirect_url: Option<Url>,
    /// Shown on the login page: "Sign in with …" (default: the issuer's host).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Timeout of each request to the provider, connect included (default 5 s).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for OidcLoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLoginConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url.as_ref().map(Url::as_str))
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl OidcLoginConfig {
    /// Record problems under `key` (normally `login.oidc`); `trust` must hold
    /// an OIDC entry for the issuer that accepts this client's ID tokens.
    pub fn validate(&self, key: &str, trust: &[TrustConfig], problems: &mut Problems) {
        match Url::parse(&self.issuer) {
            Ok(url) if !is_https_or_loopback(&url) => problems.push(
                format!("{key}.issuer"),
                "must use https unless the host is loopback",
            ),
            Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                problems.push(format!("{key}.issuer"), "must not have a query or fragment");
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{key}.issuer"), format!("must be a URL ({e})")),
        }
        let trusted = trust.iter().any(|t| match t {
            TrustConfig::Oidc(o) => {
                o.issuer == self.issuer
                    && o.audiences.contains(&self.client_id)
                    && o.token_use.allows(TokenUse::Id)
                    && (o.client_ids.is_empty() || o.client_ids.contains(&self.client_id))
            }
            TrustConfig::Cognito(_) => false,
        });
        if !trusted {
            problems.push(
                format!("{key}.issuer"),
                "add a [[tokens.trust]] entry with kind = \"oidc\", this exact issuer and this \
                 client_id in audiences (token_use must allow id tokens)",
            );
        }
        if self.client_id.is_empty() || self.client_id.len() > 256 {
            problems.push(format!("{key}.client_id"), "must be 1 to 256 characters");
        }
        if self.client_secret_file.as_os_str().is_empty() {
            problems.push(format!("{key}.client_secret_file"), "must name a file");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problems.push(format!("{key}.scopes"), "must include `openid`");
        }
        // RFC 6749 §3.3 scope-token: printable ASCII except space, `"`, `\`.
        if self.scopes.iter().any(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        }) {
            problems.push(
                format!("{key}.scopes"),
                "entries must be printable ASCII without spaces, quotes or backslashes",
            );
        }
        if let Some(url) = &self.redirect_url {
            let k = format!("{key}.redirect_url");
            if !is_https_or_loopback(url) {
                problems.push(&k, "must use https unless the host is loopback");
            }
            if url.fragment().is_some() || url.query().is_some() {
                problems.push(&k, "must not have a query or fragment");
            }
            if let Err(message) = check_callback_path(url.path()) {
                problems.push(&k, message);
            }
        }
        if let Some(name) = &self.display_name
            && (name.trim().is_empty() || name.chars().count() > 64)
        {
            problems.push(format!("{key}.display_name"), "must be 1 to 64 characters");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.timeout) {
            problems.push(format!("{key}.timeout"), "must be between 100ms and 60s");
        }
    }
}

/// Whether `path` can be the callback route: plain path characters (it
/// becomes a router path) and not a path the service serves already.
fn check_callback_path(path: &str) -> Result<(), &'static str> {
    let plain = path.len() > 1
        && path.starts_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    if !plain {
        return Err("path must be a plain path like /callback (letters, digits, - _ . ~)");
    }
    if RESERVED_PATHS.contains(&path) {
        return Err("path is already served by session-bridge");
    }
    Ok(())
}

fn is_https_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

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

/// Why a discovery fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connect, timeout, TLS).
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    /// The provider answered with another status than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The response is larger than we read.
    #[error("response too large")]
    TooLarge,
    /// The response is not the expected JSON.
    #[error("response is not the expected JSON")]
    Json(#[source] serde_json::Error),
    /// A fetch failed moments ago; the provider is not asked again yet.
    #[error("the last fetch failed moments ago")]
    Backoff,
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

/// The token response: the standard fields plus `id_token`.
#[derive(Clone, Serialize, Deserialize)]
struct IdTokenFields {
    #[serde(default)]
    id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenFields([redacted])")
    }
}

impl ExtraTokenFields for IdTokenFields {}

type OauthClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The fields of a discovery document we use.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
}

/// The provider as discovered: a ready OAuth client.
struct Provider {
    client: OauthClient,
    /// RFC 9207: the provider puts `iss` in every authorization response.
    iss_in_response: bool,
    userinfo: Option<Url>,
    fetched: Instant,
}

#[derive(Default)]
struct DiscoveryCache {
    current: Option<Arc<Provider>>,
    failed_at: Option<Instant>,
}

/// The OIDC login of one service: configuration, the cached discovery
/// document and the verifier for ID tokens.
pub struct OidcLogin {
    issuer: String,
    client_id: String,
    client_secret: Zeroizing<String>,
    scopes: Vec<String>,
    redirect_url: Url,
    display_name: String,
    http: reqwest::Client,
    verifier: Verifier,
    discovery: tokio::sync::Mutex<DiscoveryCache>,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url.as_str())
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
        check_callback_path(redirect_url.path())
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
            issuer: cfg.issuer.clone(),
            client_id: cfg.client_id.clone(),
            client_secret: secret,
            scopes: cfg.scopes.clone(),
            redirect_url,
            display_name,
            http,
            verifier,
            discovery: tokio::sync::Mutex::new(DiscoveryCache::default()),
        })
    }

    /// The name shown on the login page.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The path of the redirect URL: the route of the callback.
    pub fn callback_path(&self) -> &str {
        self.redirect_url.path()
    }

    /// Start a login that ends at `next` (a safe local path): the URL to
    /// send the browser to, and what to keep until the callback.
    pub async fn begin(&self, next: String) -> Result<(Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        Ok(authorization_request(&provider.client, &self.scopes, next))
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
        match iss {
            Some(iss) if iss != self.issuer => return Err(OidcError::ResponseIssuer),
            None if provider.iss_in_response => return Err(OidcError::ResponseIssuer),
            _ => {}
        }
        let http = self.http.clone();
        let send = move |request: HttpRequest| {
            let http = http.clone();
            async move { execute(&http, request).await }
        };
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) if !is_server_error(r.error()) => {
                    OidcError::CodeRejected(r.error().as_ref().to_owned())
                }
                RequestTokenError::ServerResponse(r) => OidcError::TokenRequest(
                    format!("the token endpoint answered {}", r.error().as_ref()).into(),
                ),
                RequestTokenError::Request(e) => OidcError::TokenRequest(Box::new(e)),
                // The body may hold tokens: keep only the parser's message.
                RequestTokenError::Parse(e, _) => {
                    OidcError::TokenRequest(format!("unparsable token response: {e}").into())
                }
                RequestTokenError::Other(m) => OidcError::TokenRequest(m.into()),
            })?;
        let id_token = response
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or(OidcError::NoIdToken)?;
        let verified = self
            .verifier
            .verify_as(id_token, TokenUse::Id)
            .await
            .map_err(OidcError::IdToken)?;
        let raw = verified.raw_claims();
        check_id_token(
            &verified.claims,
            &raw,
            &self.issuer,
            &self.client_id,
            &pending.nonce,
        )?;
        let info = match &provider.userinfo {
            Some(endpoint) => Some(
                self.userinfo(endpoint, response.access_token().secret())
                    .await?,
            ),
            None => None,
        };
        user_from(&verified.claims, &raw, info.as_ref())
    }

    /// The UserInfo claims for `access_token`.
    async fn userinfo(
        &self,
        endpoint: &Url,
        access_token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, OidcError> {
        let failed = |e: FetchError| OidcError::UserInfo(Box::new(e));
        let response = self
            .http
            .get(endpoint.clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| failed(FetchError::Http(e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(failed(FetchError::Status(response.status().as_u16())));
        }
        let body = read_limited(response).await.map_err(failed)?;
        serde_json::from_slice(&body).map_err(|e| failed(FetchError::Json(e)))
    }

    /// The discovered provider: cached for [`DISCOVERY_TTL`]; a failed
    /// refresh keeps the last good one.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        let mut cache = self.discovery.lock().await;
        if let Some(p) = &cache.current
            && p.fetched.elapsed() < DISCOVERY_TTL
        {
            return Ok(Arc::clone(p));
        }
        if cache
            .failed_at
            .is_some_and(|t| t.elapsed() < DISCOVERY_RETRY)
        {
            return cache
                .current
                .clone()
                .ok_or(OidcError::Discovery(FetchError::Backoff));
        }
        match self.discover().await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                cache.current = Some(Arc::clone(&provider));
                cache.failed_at = None;
                Ok(provider)
            }
            Err(err) => {
                cache.failed_at = Some(Instant::now());
                match &cache.current {
                    Some(stale) => {
                        tracing::warn!(error = %crate::error_chain(&err), "OIDC discovery refresh failed; using the last document");
                        Ok(Arc::clone(stale))
                    }
                    None => Err(err),
                }
            }
        }
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Discovery(FetchError::Http(e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(OidcError::Discovery(FetchError::Status(
                response.status().as_u16(),
            )));
        }
        let body = read_limited(response).await.map_err(OidcError::Discovery)?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|e| OidcError::Discovery(FetchError::Json(e)))?;
        provider_from(doc, self)
    }
}

/// Check the discovery document and build the OAuth client from it.
fn provider_from(doc: Discovery, login: &OidcLogin) -> Result<Provider, OidcError> {
    if doc.issuer != login.issuer {
        return Err(OidcError::BadDiscovery("it names another issuer"));
    }
    if !is_https_or_loopback(&doc.authorization_endpoint)
        || !is_https_or_loopback(&doc.token_endpoint)
        || doc
            .userinfo_endpoint
            .as_ref()
            .is_some_and(|u| !is_https_or_loopback(u))
    {
        return Err(OidcError::BadDiscovery(
            "its endpoints must use https unless the host is loopback",
        ));
    }
    if doc
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|m| !m.iter().any(|m| m == "S256"))
    {
        return Err(OidcError::BadDiscovery(
            "it does not support PKCE with S256",
        ));
    }
    // Absent, the list defaults to client_secret_basic (OIDC Discovery §3).
    let methods = doc
        .token_endpoint_auth_methods_supported
        .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]);
    let auth_type = if methods.iter().any(|m| m == "client_secret_basic") {
        AuthType::BasicAuth
    } else if methods.iter().any(|m| m == "client_secret_post") {
        AuthType::RequestBody
    } else {
        return Err(OidcError::BadDiscovery(
            "its token endpoint takes neither client_secret_basic nor client_secret_post",
        ));
    };
    let client = oauth2::Client::new(ClientId::new(login.client_id.clone()))
        .set_client_secret(ClientSecret::new(login.client_secret.to_string()))
        .set_auth_type(auth_type)
        .set_auth_uri(AuthUrl::from_url(doc.authorization_endpoint))
        .set_token_uri(TokenUrl::from_url(doc.token_endpoint))
        .set_redirect_uri(RedirectUrl::from_url(login.redirect_url.clone()));
    Ok(Provider {
        client,
        iss_in_response: doc.authorization_response_iss_parameter_supported,
        userinfo: doc.userinfo_endpoint,
        fetched: Instant::now(),
    })
}

/// The authorization URL (`response_type=code`, PKCE S256, `state`,
/// `nonce`) and the pending login that goes with it.
fn authorization_request(
    client: &OauthClient,
    scopes: &[String],
    next: String,
) -> (Url, PendingLogin) {
    let state = random_token();
    let nonce = random_token();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(|| CsrfToken::new(state.clone()))
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .add_extra_param("nonce", nonce.clone())
        .set_pkce_challenge(challenge)
        .url();
    let pending = PendingLogin {
        state,
        nonce,
        pkce_verifier: verifier.into_secret(),
        next,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    (url, pending)
}

/// 256 random bits, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn is_server_error(e: &oauth2::basic::BasicErrorResponseType) -> bool {
    matches!(e.as_ref(), "server_error" | "temporarily_unavailable")
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The checks the verifier cannot make for this flow: the token must come
/// from our provider (the verifier trusts others too), name our client, and
/// carry the nonce of this login.
fn check_id_token(
    claims: &Claims,
    raw: &JsonObject,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<(), OidcError> {
    if claims.iss != issuer {
        return Err(OidcError::WrongToken("issued by another trusted issuer"));
    }
    if !claims.aud.iter().any(|a| a == client_id) {
        return Err(OidcError::WrongToken("aud does not name our client"));
    }
    // OIDC Core §3.1.3.7: with several audiences, `azp` names the client.
    let azp = raw.get("azp").and_then(serde_json::Value::as_str);
    if azp.is_some_and(|a| a != client_id) || (claims.aud.len() > 1 && azp.is_none()) {
        return Err(OidcError::WrongToken("azp does not name our client"));
    }
    let sent = raw
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if sent.is_empty() || !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
        return Err(OidcError::Nonce);
    }
    Ok(())
}

/// The identity of a checked ID token; claims it lacks are taken from the
/// UserInfo response `info`, which must be about the same `sub`.
fn user_from(
    claims: &Claims,
    raw: &JsonObject,
    info: Option<&JsonObject>,
) -> Result<AuthenticatedUser, OidcError> {
    let info_text = |name: &str| {
        info.and_then(|i| i.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if info.is_some() && info_text("sub").as_deref() != Some(claims.sub.as_str()) {
        return Err(OidcError::WrongToken("userinfo is about another subject"));
    }
    let username = raw
        .get("preferred_username")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .or_else(|| claims.username.clone())
        .or_else(|| info_text("preferred_username"))
        .unwrap_or_else(|| claims.sub.clone());
    let groups = if claims.groups.is_empty() {
        info.and_then(|i| i.get("groups"))
            .and_then(serde_json::Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        claims.groups.clone()
    };
    Ok(AuthenticatedUser {
        sub: claims.sub.clone(),
        username,
        groups,
        email: claims.email.clone().or_else(|| info_text("email")),
        issuer: claims.iss.clone(),
        auth_time: claims
            .auth_time
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or_else(OffsetDateTime::now_utc),
    })
}

/// Why a request to the token endpoint failed below OAuth.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request failed (connect, timeout, TLS) or could not be built.
    #[error("request failed")]
    Http(#[from] reqwest::Error),
    /// The response is unusable (too large, bad headers).
    #[error("unusable response: {0}")]
    Response(&'static str),
}

/// Send an oauth2 request through reqwest, reading at most
/// [`MAX_RESPONSE_BYTES`].
async fn execute(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = read_limited(response).await.map_err(|e| match e {
        FetchError::Http(e) => HttpError::Http(e),
        _ => HttpError::Response("body too large"),
    })?;
    builder
        .body(body)
        .map_err(|_| HttpError::Response("bad headers"))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Http)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use figment::providers::Format as _;

    const ISS: &str = "https://idp.example.com";

    fn claims() -> Claims {
        Claims {
            iss: ISS.to_owned(),
            sub: "u-1".to_owned(),
            token_use: TokenUse::Id,
            client_id: None,
            aud: vec!["bridge".to_owned()],
            exp: 2_000_000_000,
            iat: None,
            nbf: None,
            auth_time: Some(1_800_000_000),
            jti: None,
            origin_jti: None,
            username: None,
            groups: vec!["users".to_owned()],
            scopes: vec![],
            email: Some("u@example.test".to_owned()),
        }
    }

    fn raw(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    fn check(c: &Claims, r: &JsonObject, nonce: &str) -> Result<(), OidcError> {
        check_id_token(c, r, ISS, "bridge", nonce)
    }

    #[test]
    fn nonce_must_match_exactly() {
        let c = claims();
        check(&c, &raw(serde_json::json!({"nonce": "n-1"})), "n-1").unwrap();
        for bad in [
            serde_json::json!({"nonce": "n-2"}),
            serde_json::json!({"nonce": "n-1x"}),
            serde_json::json!({"nonce": "N-1"}),
            serde_json::json!({"nonce": ""}),
            serde_json::json!({"nonce": 1}),
            serde_json::json!({}),
        ] {
            assert!(
                matches!(check(&c, &raw(bad.clone()), "n-1"), Err(OidcError::Nonce)),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn token_must_be_ours() {
        let r = raw(serde_json::json!({"nonce": "n"}));
        let mut c = claims();
        c.iss = "https://other.example.com".to_owned();
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let mut c = claims();
        c.aud = vec!["api".to_owned()];
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let mut c = claims();
        c.aud = vec!["bridge".to_owned(), "api".to_owned()];
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let with_azp = raw(serde_json::json!({"nonce": "n", "azp": "bridge"}));
        assert!(check(&c, &with_azp, "n").is_ok());
        let other_azp = raw(serde_json::json!({"nonce": "n", "azp": "api"}));
        assert!(check(&claims(), &other_azp, "n").is_err());
    }

    #[test]
    fn identity_from_the_id_token_then_userinfo() {
        let c = claims();
        let r = raw(serde_json::json!({"preferred_username": "alice"}));
        let u = user_from(&c, &r, None).unwrap();
        assert_eq!((u.sub.as_str(), u.username.as_str()), ("u-1", "alice"));
        assert_eq!(u.groups, ["users"]);
        assert_eq!(u.email.as_deref(), Some("u@example.test"));
        assert_eq!(u.issuer, ISS);
        assert_eq!(u.auth_time.unix_timestamp(), 1_800_000_000);
        // Without preferred_username the username is the sub.
        assert_eq!(
            user_from(&c, &raw(serde_json::json!({})), None)
                .unwrap()
                .username,
            "u-1"
        );

        // Claims the ID token lacks come from userinfo; its own win.
        let mut bare = claims();
        bare.groups.clear();
        bare.email = None;
        let info = raw(serde_json::json!({
            "sub": "u-1", "preferred_username": "bob", "email": "b@example.test",
            "groups": ["admins", 7],
        }));
        let u = user_from(&bare, &raw(serde_json::json!({})), Some(&info)).unwrap();
        assert_eq!(u.username, "bob");
        assert_eq!(u.groups, ["admins"]);
        assert_eq!(u.email.as_deref(), Some("b@example.test"));
        let u = user_from(&c, &r, Some(&info)).unwrap();
        assert_eq!(
            (u.username.as_str(), u.groups.as_slice()),
            ("alice", ["users".to_owned()].as_slice())
        );
        // Userinfo about someone else is refused.
        for other in [serde_json::json!({"sub": "u-2"}), serde_json::json!({})] {
            assert!(matches!(
                user_from(&c, &r, Some(&raw(other))),
                Err(OidcError::WrongToken(_))
            ));
        }
    }

    fn login(dir: &tempfile::TempDir) -> OidcLogin {
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let cfg = OidcLoginConfig {
            issuer: ISS.to_owned(),
            client_id: "bridge".to_owned(),
            client_secret_file: secret,
            scopes: default_scopes(),
            redirect_url: None,
            display_name: None,
            timeout: default_timeout(),
        };
        let verifier = Verifier::new(&Default::default(), &[], None).unwrap();
        OidcLogin::new(&cfg, "https://app.example.com/", verifier).unwrap()
    }

    fn discovery(v: serde_json::Value) -> Discovery {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn authorization_url_carries_pkce_state_and_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let login = login(&dir);
        assert_eq!(login.callback_path(), "/callback");
        assert_eq!(login.display_name(), "idp.example.com");
        let provider = provider_from(
            discovery(serde_json::json!({
                "issuer": ISS,
                "authorization_endpoint": "https://idp.example.com/auth?x=1",
                "token_endpoint": "https://idp.example.com/token",
            })),
            &login,
        )
        .unwrap();
        let (url, pending) =
            authorization_request(&provider.client, &login.scopes, "/next".to_owned());
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/auth");
        assert_eq!(q["x"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "bridge");
        assert_eq!(q["redirect_uri"], "https://app.example.com/callback");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], pending.state);
        assert_eq!(q["nonce"], pending.nonce);
        assert!(pending.state.len() >= 43 && pending.nonce.len() >= 43);
        assert_ne!(pending.state, pending.nonce);
        assert!(!q.values().any(|v| v.contains(&pending.pkce_verifier)));
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pending.pkce_verifier.as_bytes());
        assert_eq!(
            q["code_challenge"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
        assert!(!format!("{pending:?}").contains(&pending.state));
    }

    #[test]
    fn discovery_must_name_our_issuer_and_safe_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let login = login(&dir);
        for (doc, ok) in [
            (
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token"}),
                true,
            ),
            (
                serde_json::json!({"issuer": format!("{ISS}/"), "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token"}),
                false,
            ),
            (
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "http://a/auth", "token_endpoint": "https://a/token"}),
                false,
            ),
            (
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token", "code_challenge_methods_supported": ["plain"]}),
                false,
            ),
            (
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token", "token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
                false,
            ),
            (
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token", "token_endpoint_auth_methods_supported": ["client_secret_post"]}),
                true,
            ),
        ] {
            assert_eq!(
                provider_from(discovery(doc.clone()), &login).is_ok(),
                ok,
                "{doc}"
            );
        }
    }

    fn parse(toml_src: &str) -> (OidcLoginConfig, Vec<TrustConfig>) {
        #[derive(Deserialize)]
        struct Doc {
            oidc: OidcLoginConfig,
            #[serde(default)]
            trust: Vec<TrustConfig>,
        }
        let d: Doc = figment::Figment::from(figment::providers::Toml::string(toml_src))
            .extract()
            .unwrap();
        (d.oidc, d.trust)
    }

    fn problem_keys(toml_src: &str) -> Vec<String> {
        let (cfg, trust) = parse(toml_src);
        let mut p = Problems::default();
        cfg.validate("login.oidc", &trust, &mut p);
        p.into_vec().into_iter().map(|p| p.key).collect()
    }

    const TRUST: &str = "[[trust]]\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\naudiences = [\"bridge\"]\n";

    #[test]
    fn config_defaults_and_trust_requirement() {
        let base = "[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"bridge\"\nclient_secret_file = \"/s\"\n";
        let (cfg, _) = parse(base);
        assert_eq!(cfg.scopes, ["openid", "profile", "email"]);
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        assert!(problem_keys(&format!("{base}{TRUST}")).is_empty());
        assert_eq!(problem_keys(base), ["login.oidc.issuer"]);
        // Trusted, but not for this client, or not for ID tokens.
        assert_eq!(
            problem_keys(&format!("{base}{}", TRUST.replace("\"bridge\"", "\"api\""))),
            ["login.oidc.issuer"]
        );
        assert_eq!(
            problem_keys(&format!("{base}{TRUST}token_use = \"access\"\n")),
            ["login.oidc.issuer"]
        );
        assert_eq!(
            problem_keys(&format!(
                "{base}{}",
                TRUST.replace("example.com", "example.com/")
            )),
            ["login.oidc.issuer"]
        );
        assert!(!format!("{cfg:?}").contains("/s\""), "{cfg:?}");
    }

    #[test]
    fn bad_settings_name_their_keys() {
        let keys = problem_keys(&format!(
            "[oidc]\nissuer = \"http://idp.example.com\"\nclient_id = \"\"\nclient_secret_file = \"\"\nscopes = [\"profile\", \"a b\"]\nredirect_url = \"https://app.example.com/login\"\ndisplay_name = \" \"\ntimeout = \"2m\"\n{TRUST}"
        ));
        for want in [
            "issuer",
            "client_id",
            "client_secret_file",
            "scopes",
            "redirect_url",
            "display_name",
            "timeout",
        ] {
            assert!(
                keys.contains(&format!("login.oidc.{want}")),
                "{want} missing in {keys:?}"
            );
        }
        assert!(check_callback_path("/auth/callback").is_ok());
        for bad in ["/", "/session", "/{x}", "/a//b", "/*rest", ""] {
            assert!(check_callback_path(bad).is_err(), "{bad}");
        }
        let err = figment::Figment::from(figment::providers::Toml::string("issuer = \"https://a\"\nclient_id = \"c\"\nclient_secret = \"x\"\nclient_secret_file = \"/s\""))
            .extract::<OidcLoginConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
    }
}
