//! [`BridgeBuilder`]: the one way to assemble a [`Bridge`], for a library
//! user and for the service alike.

use std::sync::Arc;
use std::time::Duration;

use session_bridge_store::{RevocationStore, SessionStore};

use super::config::{
    CookieConfig, CsrfConfig, PolicyConfig, RouteRuleConfig, SameSite, SessionConfig,
};
use super::source::Sources;
use super::{Bridge, Cookies, CredentialSource, Csrf, Inner, Mode, RoutePolicy, Sessions};
use crate::problems::{Problem, Problems};
use crate::tokens::config::TokensConfig;
use crate::tokens::keys::KeyRing;
use crate::tokens::mint::Minter;
use crate::tokens::verify::{LocalKeys, OwnIssuer, Verifier, VerifierSetupError};

/// Why a [`BridgeBuilder`] could not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeBuildError {
    /// A required part was not given.
    #[error("the bridge needs {0}")]
    Missing(&'static str),
    /// Some options are out of range; every problem is listed, each under
    /// the name of its option.
    #[error("invalid bridge options: {}", list(.0))]
    Invalid(Vec<Problem>),
    /// The verifier of our own tokens could not be set up.
    #[error("cannot set up token verification")]
    Verifier(#[source] VerifierSetupError),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds a [`Bridge`]: a store, a key source, an issuer and route rules are
/// all it needs; everything else has a default.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use session_bridge::bridge::{Bridge, Mode};
/// use session_bridge::tokens::config::SigningAlgorithm;
/// use session_bridge::tokens::keys::KeyRing;
/// use session_bridge_store::MemoryStore;
///
/// let bridge = Bridge::builder()
///     .store(MemoryStore::default())
///     .keys(Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256)?))
///     .issuer("http://127.0.0.1:3000")
///     .default_mode(Mode::Public)
///     .route("/api/*", Mode::Token)
///     .route("/account/*", Mode::Either)
///     .session_ttl(Duration::from_secs(30 * 60), Duration::from_secs(8 * 3600))
///     .build()?;
/// assert_eq!(bridge.minter().issuer(), "http://127.0.0.1:3000");
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct BridgeBuilder {
    session_store: Option<Arc<dyn SessionStore>>,
    revocation_store: Option<Arc<dyn RevocationStore>>,
    token_revocation: Option<Arc<dyn RevocationStore>>,
    keys: Option<Arc<KeyRing>>,
    issuer: Option<String>,
    tokens: TokensConfig,
    verifier: Option<Verifier>,
    session: SessionConfig,
    cookies: CookieConfig,
    csrf: CsrfConfig,
    policy: PolicyConfig,
    login_redirect: Option<String>,
    sources: Sources,
}

impl BridgeBuilder {
    /// Keep sessions and revocation state in one store that holds both
    /// (`MemoryStore`, the embedded, Redis and DynamoDB stores).
    pub fn store<S>(self, store: S) -> Self
    where
        S: SessionStore + RevocationStore + Clone,
    {
        let sessions: Arc<dyn SessionStore> = Arc::new(store.clone());
        let revocation: Arc<dyn RevocationStore> = Arc::new(store);
        self.stores(sessions, revocation)
    }

    /// Sessions in one store, revocation state in another.
    pub fn stores(
        mut self,
        sessions: Arc<dyn SessionStore>,
        revocation: Arc<dyn RevocationStore>,
    ) -> Self {
        self.session_store = Some(sessions);
        self.revocation_store = Some(revocation);
        self
    }

    /// Where token checks read the revocation state, when it is not the
    /// revocation store itself: typically a
    /// [`ReplicatedRevocation`](super::ReplicatedRevocation) over it, so a
    /// token check costs no round trip. Writes must reach the same store.
    pub fn token_revocation(mut self, revocation: Arc<dyn RevocationStore>) -> Self {
        self.token_revocation = Some(revocation);
        self
    }

    /// The signing keys (see [`KeyRing::in_memory`], [`KeyRing::open`]).
    pub fn keys(mut self, keys: Arc<KeyRing>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Our `iss`: the public URL the app is reached at (`https://…` turns
    /// on `Secure` cookies and names the origin CSRF checks expect).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The app client our tokens name (`client_id`, and `aud` of ID
    /// tokens). Default `session-bridge`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.tokens.client_id = client_id.into();
        self
    }

    /// Lifetime of minted access tokens (1 min – 24 h, default 15 min).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.tokens.access_ttl = ttl;
        self
    }

    /// Lifetime of minted ID tokens (1 min – 24 h, default 1 h).
    pub fn id_ttl(mut self, ttl: Duration) -> Self {
        self.tokens.id_ttl = ttl;
        self
    }

    /// The `scope` claim of minted access tokens (default `openid profile`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.tokens.scope = scope.into();
        self
    }

    /// Clock skew allowed on `exp`/`nbf`/`iat` when verifying our own
    /// tokens (default 30 s, at most 5 min). Ignored with
    /// [`verifier`](Self::verifier).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.tokens.verify.leeway = leeway;
        self
    }

    /// Verify with `verifier` instead of one that trusts only our own
    /// tokens: to also accept trusted issuers' tokens (Cognito, OIDC). It
    /// must trust our own issuer too (see [`OwnIssuer`]).
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Idle and absolute session lifetimes (defaults 30 min and 12 h). The
    /// idle expiry is extended lazily, once less than half of it is left.
    pub fn session_ttl(mut self, idle: Duration, absolute: Duration) -> Self {
        self.session.idle_ttl = idle;
        self.session.absolute_ttl = absolute;
        self
    }

    /// Mark cookies `Secure` with the `__Host-` prefix. Default: on when the
    /// issuer is `https`. Off is for local http development only.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.cookies.secure = Some(secure);
        self
    }

    /// Names of the session, token and CSRF cookies, before the `__Host-`
    /// prefix (defaults `sb_session`, `sb_token`, `sb_csrf`).
    pub fn cookie_names(
        mut self,
        session: impl Into<String>,
        token: impl Into<String>,
        csrf: impl Into<String>,
    ) -> Self {
        self.cookies.session_name = session.into();
        self.cookies.token_name = token.into();
        self.cookies.csrf_name = csrf.into();
        self
    }

    /// `SameSite` of the token cookie (default `Lax`; the session cookie is
    /// always `Lax`).
    pub fn token_cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.cookies.token_same_site = same_site;
        self
    }

    /// Another origin allowed to make cookie-authenticated state changes
    /// (`https://app.example.com`, no path).
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.csrf.trusted_origins.push(origin.into());
        self
    }

    /// The header carrying the CSRF token (default `x-csrf-token`).
    pub fn csrf_header(mut self, header: impl Into<String>) -> Self {
        self.csrf.header = header.into();
        self
    }

    /// The mode of paths no rule matches (default `either`).
    pub fn default_mode(mut self, mode: Mode) -> Self {
        self.policy.default = mode;
        self
    }

    /// A route rule: `path` is `*`, an exact path, or a prefix ending in
    /// `/*`. The first matching rule wins.
    pub fn route(self, path: impl Into<String>, mode: Mode) -> Self {
        self.rule(RouteRuleConfig::new(path, mode))
    }

    /// A route rule with every option (methods, shadow evaluation, name).
    pub fn rule(mut self, rule: RouteRuleConfig) -> Self {
        self.policy.routes.push(rule);
        self
    }

    /// Send browser navigations without a credential to `path` (with
    /// `?next=`) instead of answering 401.
    pub fn login_redirect(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.policy.login_path.clone_from(&path);
        self.login_redirect = Some(path);
        self
    }

    /// Another place a credential can come from, asked after the bridge's
    /// own credentials and after the sources added before it.
    pub fn credential_source(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Check every option and assemble the bridge.
    pub fn build(self) -> Result<Bridge, BridgeBuildError> {
        let sessions_store = self
            .session_store
            .ok_or(BridgeBuildError::Missing("a session store (`store`)"))?;
        let revocation = self
            .revocation_store
            .ok_or(BridgeBuildError::Missing("a revocation store (`store`)"))?;
        let keys = self
            .keys
            .ok_or(BridgeBuildError::Missing("signing keys (`keys`)"))?;
        let issuer = self
            .issuer
            .ok_or(BridgeBuildError::Missing("an issuer URL (`issuer`)"))?;

        let mut problems = Problems::default();
        let issuer_url = url::Url::parse(&issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if issuer_url.is_none() {
            problems.push(
                "issuer",
                "must be an http(s) URL such as https://app.example.com",
            );
        }
        self.tokens.validate("tokens", &mut problems);
        self.session.validate("session_ttl", &mut problems);
        self.cookies.validate("cookies", &mut problems);
        self.csrf.validate("csrf", &mut problems);
        self.policy.validate("policy", &mut problems);
        if !problems.is_empty() {
            return Err(BridgeBuildError::Invalid(problems.into_vec()));
        }

        let verifier = match self.verifier {
            Some(verifier) => verifier,
            None => Verifier::new(
                &self.tokens.verify,
                &[],
                Some(OwnIssuer {
                    issuer: issuer.clone(),
                    client_id: self.tokens.client_id.clone(),
                    keys: Arc::clone(&keys) as Arc<dyn LocalKeys>,
                }),
            )
            .map_err(BridgeBuildError::Verifier)?,
        };
        let secure = self
            .cookies
            .secure
            .unwrap_or_else(|| issuer_url.as_ref().is_some_and(|u| u.scheme() == "https"));
        let cookies = Cookies::new(&self.cookies, secure);
        let own_origin = issuer_url
            .as_ref()
            .map(super::csrf::origin_of)
            .unwrap_or_default();
        let csrf_header = axum::http::HeaderName::from_bytes(self.csrf.header.as_bytes())
            .unwrap_or(axum::http::HeaderName::from_static("x-csrf-token"));
        let csrf = Csrf::new(
            own_origin,
            &self.csrf.trusted_origins,
            csrf_header,
            cookies.csrf_name().to_owned(),
        );
        let sessions = Sessions::new(sessions_store, Arc::clone(&revocation), &self.session);
        let minter = Minter::new(keys, issuer, &self.tokens);
        Ok(Bridge {
            inner: Arc::new(Inner {
                sessions,
                revocation: self.token_revocation.unwrap_or(revocation),
                verifier,
                minter,
                cookies,
                policy: RoutePolicy::new(&self.policy),
                csrf,
                login_redirect: self.login_redirect,
                sources: self.sources,
            }),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tokens::config::SigningAlgorithm;
    use session_bridge_store::MemoryStore;

    fn keys() -> Arc<KeyRing> {
        Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256).unwrap())
    }

    #[test]
    fn names_what_is_missing() {
        let err = Bridge::builder()
            .keys(keys())
            .issuer("http://a.test")
            .build()
            .unwrap_err();
        assert!(matches!(err, BridgeBuildError::Missing(m) if m.contains("store")));
        let err = Bridge::builder()
            .store(MemoryStore::default())
            .issuer("http://a.test")
            .build()
            .unwrap_err();
        assert!(matches!(err, BridgeBuildError::Missing(m) if m.contains("keys")));
    }

    #[test]
    fn reports_every_bad_option_at_once() {
        let err = Bridge::builder()
            .store(MemoryStore::default())
            .keys(keys())
            .issuer("not a url")
            .access_ttl(Duration::from_secs(1))
            .route("admin", Mode::Session)
            .cookie_names("same", "same", "csrf")
            .build()
            .unwrap_err();
        let BridgeBuildError::Invalid(problems) = err else {
            panic!("expected Invalid, got {err:?}");
        };
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"issuer"), "{keys:?}");
        assert!(keys.contains(&"tokens.access_ttl"), "{keys:?}");
        assert!(keys.contains(&"policy.routes[0].path"), "{keys:?}");
        assert!(keys.contains(&"cookies.token_name"), "{keys:?}");
    }

    #[test]
    fn https_issuers_get_secure_cookies() {
        let bridge = Bridge::builder()
            .store(MemoryStore::default())
            .keys(keys())
            .issuer("https://app.example.com")
            .build()
            .unwrap();
        assert!(bridge.cookies().secure());
        assert!(bridge.cookies().session_name().starts_with("__Host-"));
    }
}
