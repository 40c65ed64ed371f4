//! The bridge: one [`Identity`] from a session cookie, a token cookie or a
//! bearer token, per-route migration policy, revocation on both paths.
//!
//! The request path, top to bottom:
//!
//! 1. [`RoutePolicy`] picks the route's [`Mode`];
//! 2. [`Bridge::authenticate`] reads the credentials that mode accepts
//!    ([`cookies`]), verifies a token ([`crate::tokens::verify`]) or loads a
//!    session ([`sessions`]), then checks revocation (killed ids, the user's
//!    epoch);
//! 3. the [`layer`] applies CSRF rules ([`csrf`]) to cookie-authenticated
//!    state changes, puts the [`Identity`] into the request for the
//!    extractors, and sets cookies the mode asks for (a token minted from a
//!    session, a session linked to a token);
//! 4. every request is counted by rule × credential × outcome ([`metrics`]).

pub(crate) mod app_session;
mod builder;
pub mod config;
pub mod cookies;
pub mod csrf;
pub(crate) mod decision;
pub mod layer;
pub mod metrics;
pub mod policy;
pub mod rejection;
pub mod replica;
pub mod sessions;
pub mod source;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use session_bridge_store::RevocationStore;
use time::OffsetDateTime;

pub use app_session::{Session, SessionLoginError};
pub use builder::{BridgeBuildError, BridgeBuilder};
pub use config::Mode;
pub use cookies::Cookies;
pub use csrf::Csrf;
pub use layer::{BridgeLayer, BridgeService};
pub use policy::{RoutePolicy, RouteRule};
pub use rejection::AuthRejection;
pub use replica::ReplicatedRevocation;
pub use sessions::{LoadedSession, SessionError, Sessions};
pub use source::{CredentialSource, LogoutScope};

use crate::identity::{Credential, CredentialKind, Identity, Principal};
use crate::tokens::mint::{MintedToken, Minter, Subject};
use crate::tokens::verify::{TokenUse, VerifiedToken, Verifier};

/// What a [`Bridge`] holds; built by [`BridgeBuilder`].
#[derive(Debug)]
struct Inner {
    sessions: Sessions,
    /// Epochs and killed ids for token checks (a [`ReplicatedRevocation`]
    /// when a local replica answers them).
    revocation: Arc<dyn RevocationStore>,
    verifier: Verifier,
    minter: Minter,
    cookies: Cookies,
    policy: RoutePolicy,
    csrf: Csrf,
    /// Send browser navigations to this login path instead of a 401.
    login_redirect: Option<String>,
    /// Other places a credential can come from, asked in order.
    sources: source::Sources,
}

/// The shared core of the library layer and the service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

/// What authentication found for one mode.
// Not boxed: it is built once per request and consumed right away, so the
// size costs nothing while a box would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Authn {
    /// A credential the mode accepts proved an identity.
    Authenticated(Authenticated),
    /// No credential the mode accepts was presented.
    Anonymous,
    /// A credential was presented and refused.
    Rejected(AuthRejection),
}

/// A successful authentication and what the response may need to set.
#[derive(Debug)]
pub struct Authenticated {
    /// The identity.
    pub identity: Identity,
    /// The session, when a session proved it.
    pub session: Option<LoadedSession>,
    /// The token family (session family or the token's `origin_jti`).
    pub family: Option<String>,
    /// Whether a session cookie was presented at all.
    pub session_cookie_present: bool,
}

impl Authn {
    /// Outcome label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Authenticated(_) => "ok",
            Self::Anonymous => "anonymous",
            Self::Rejected(r) => r.outcome(),
        }
    }

    /// Whether the request would be let through under a mode that needs a
    /// credential.
    pub fn accepted(&self) -> bool {
        matches!(self, Self::Authenticated(_))
    }
}

impl Bridge {
    /// Start building a bridge: see [`BridgeBuilder`].
    pub fn builder() -> BridgeBuilder {
        BridgeBuilder::default()
    }

    /// Sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Revocation state.
    pub fn revocation(&self) -> &Arc<dyn RevocationStore> {
        &self.inner.revocation
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The minter.
    pub fn minter(&self) -> &Minter {
        &self.inner.minter
    }

    /// Cookie names and attributes.
    pub fn cookies(&self) -> &Cookies {
        &self.inner.cookies
    }

    /// Route rules.
    pub fn policy(&self) -> &RoutePolicy {
        &self.inner.policy
    }

    /// CSRF rules.
    pub fn csrf(&self) -> &Csrf {
        &self.inner.csrf
    }

    /// The credential source of type `T`, if the bridge has one.
    pub fn source<T: CredentialSource>(&self) -> Option<&T> {
        self.inner.sources.get::<T>()
    }

    /// Tell every credential source that `user` logged in through the
    /// bridge; returns the `Set-Cookie` values they want sent. Fails (503)
    /// when a source's store is unreachable, so a user is never logged in on
    /// one side only.
    pub async fn sources_login(
        &self,
        headers: &HeaderMap,
        user: &Principal,
        family: &str,
    ) -> Result<Vec<HeaderValue>, AuthRejection> {
        self.inner.sources.on_login(headers, user, family).await
    }

    /// Tell every credential source that the request logs out, ending what
    /// `scope` names too.
    pub async fn sources_logout(
        &self,
        headers: &HeaderMap,
        scope: LogoutScope<'_>,
    ) -> Result<(), AuthRejection> {
        self.inner.sources.on_logout(headers, scope).await
    }

    /// `Set-Cookie` values clearing every credential source's cookies.
    pub fn sources_clear_cookies(&self) -> Vec<HeaderValue> {
        self.inner.sources.clear_cookies()
    }

    /// Where browser navigations without a credential are sent, if anywhere.
    pub fn login_redirect(&self) -> Option<&str> {
        self.inner.login_redirect.as_deref()
    }

    /// Authenticate a request's headers for `mode`.
    ///
    /// - `session`: the session cookie only;
    /// - `token`: the bearer header, else the token cookie;
    /// - `either` / `public`: the bearer header, else the token cookie, else
    ///   the session cookie (a failed token cookie falls back to the session:
    ///   the token cookie is a cache of the session, a bearer header is an
    ///   explicit claim and is judged alone).
    ///
    /// When `session` or `either` / `public` finds no bridge credential at
    /// all, the [credential sources](CredentialSource) are asked in turn
    /// (for example a login the legacy PHP app recorded).
    pub async fn authenticate(&self, headers: &HeaderMap, mode: Mode) -> Authn {
        let bearer = bearer(headers);
        let token_cookie = cookies::read(headers, self.inner.cookies.token_name());
        let session_cookie = cookies::read(headers, self.inner.cookies.session_name());
        let with_cookie = |authn: Authn| match authn {
            Authn::Authenticated(mut a) => {
                a.session_cookie_present = session_cookie.is_some();
                Authn::Authenticated(a)
            }
            other => other,
        };
        match mode {
            Mode::Session => self.session_or_sources(session_cookie, headers).await,
            Mode::Token => match (bearer, token_cookie) {
                (Some(token), _) => self.by_token(token, CredentialKind::Bearer).await,
                (None, Some(token)) => {
                    with_cookie(self.by_token(token, CredentialKind::TokenCookie).await)
                }
                (None, None) => Authn::Anonymous,
            },
            Mode::Either | Mode::Public => {
                if let Some(token) = bearer {
                    return self.by_token(token, CredentialKind::Bearer).await;
                }
                if let Some(token) = token_cookie {
                    let by_token =
                        with_cookie(self.by_token(token, CredentialKind::TokenCookie).await);
                    match (&by_token, session_cookie) {
                        (Authn::Authenticated(_), _) | (_, None) => return by_token,
                        // Unavailable stores fail closed rather than retrying
                        // the same store through the session.
                        (Authn::Rejected(AuthRejection::Unavailable), _) => return by_token,
                        _ => {}
                    }
                }
                self.session_or_sources(session_cookie, headers).await
            }
        }
    }

    /// The session cookie; when it proves nobody (absent, or a session
    /// holding only the application's data), the credential sources.
    async fn session_or_sources(&self, cookie: Option<&str>, headers: &HeaderMap) -> Authn {
        match cookie {
            Some(cookie) => match self.by_session(cookie).await {
                Authn::Anonymous => self.by_sources(headers).await,
                other => other,
            },
            None => self.by_sources(headers).await,
        }
    }

    async fn by_session(&self, cookie: &str) -> Authn {
        match self.inner.sessions.load(cookie).await {
            Ok(session) => Authn::Authenticated(Authenticated {
                identity: session.to_identity(),
                family: Some(session.identity.family.clone()),
                session: Some(session),
                session_cookie_present: true,
            }),
            Err(SessionError::Invalid) => Authn::Rejected(AuthRejection::InvalidSession),
            Err(SessionError::Revoked) => Authn::Rejected(AuthRejection::Revoked),
            // Nobody logged in on it; its data stays the application's.
            Err(SessionError::NoLogin) => Authn::Anonymous,
            Err(err) => {
                tracing::warn!(error = %err, "session check failed: store unavailable");
                Authn::Rejected(AuthRejection::Unavailable)
            }
        }
    }

    /// No bridge credential: ask the other credential sources in turn.
    async fn by_sources(&self, headers: &HeaderMap) -> Authn {
        self.inner
            .sources
            .authenticate(headers, self.inner.sessions.revocation())
            .await
    }

    async fn by_token(&self, token: &str, kind: CredentialKind) -> Authn {
        let verified = match self.inner.verifier.verify_as(token, TokenUse::Access).await {
            Ok(v) => v,
            Err(err) if err.kind() == crate::tokens::verify::VerifyErrorKind::UnknownIssuer => {
                // Most often a token minted for another address or public
                // URL: say which issuers would have been accepted.
                tracing::info!(
                    credential = kind.as_str(),
                    expected = err.expected_issuers().unwrap_or_default(),
                    "token refused: unknown issuer"
                );
                return Authn::Rejected(AuthRejection::UnknownIssuer {
                    expected: self.inner.minter.issuer().to_owned(),
                });
            }
            Err(err) => {
                tracing::debug!(
                    kind = err.kind().as_str(),
                    credential = kind.as_str(),
                    "token refused"
                );
                return Authn::Rejected(AuthRejection::InvalidToken(err.kind()));
            }
        };
        // Only our own tokens ride in our token cookie.
        if kind == CredentialKind::TokenCookie && verified.claims.iss != self.inner.minter.issuer()
        {
            return Authn::Rejected(AuthRejection::InvalidToken(
                crate::tokens::verify::VerifyErrorKind::WrongIssuer,
            ));
        }
        match self.token_revoked(&verified).await {
            Ok(false) => {}
            Ok(true) => return Authn::Rejected(AuthRejection::Revoked),
            Err(err) => {
                tracing::warn!(error = %crate::error_chain(&err), "revocation check failed: store unavailable");
                return Authn::Rejected(AuthRejection::Unavailable);
            }
        }
        let c = verified.claims;
        let expires_at =
            OffsetDateTime::from_unix_timestamp(c.exp).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let auth_time = c
            .auth_time
            .or(c.iat)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        Authn::Authenticated(Authenticated {
            identity: Identity {
                principal: Principal {
                    sub: c.sub,
                    username: c.username,
                    groups: c.groups,
                    email: c.email,
                    auth_time: auth_time.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    issuer: c.iss,
                },
                credential: Credential {
                    kind,
                    id: c.jti.unwrap_or_default(),
                    expires_at,
                    absolute_expires_at: None,
                },
            },
            session: None,
            family: c.origin_jti,
            session_cookie_present: false,
        })
    }

    /// Killed `jti` or `origin_jti`, or issued before the user's epoch. The
    /// three lookups run concurrently (locally when the revocation store is
    /// a [`ReplicatedRevocation`]).
    async fn token_revoked(
        &self,
        verified: &VerifiedToken,
    ) -> Result<bool, session_bridge_store::StoreError> {
        let c = &verified.claims;
        let store = &self.inner.revocation;
        let killed = |id: &Option<String>| {
            let id = id.clone();
            async move {
                match id {
                    Some(id) => store.is_killed(&id).await,
                    None => Ok(false),
                }
            }
        };
        let (jti, family, epoch) =
            tokio::join!(killed(&c.jti), killed(&c.origin_jti), store.epoch(&c.sub));
        if jti? || family? {
            return Ok(true);
        }
        // `iat` has one-second resolution: a token issued in the same second
        // as a "log out everywhere" counts as issued before it (fail closed).
        Ok(match epoch? {
            Some(epoch) => c
                .iat
                .or(c.auth_time)
                .is_none_or(|iat| iat.saturating_mul(1000) <= epoch),
            None => false,
        })
    }

    /// Kill a token id (`jti` or a family's `origin_jti`) until `until`.
    pub async fn kill(
        &self,
        id: &str,
        until: OffsetDateTime,
    ) -> Result<(), session_bridge_store::StoreError> {
        self.inner.revocation.kill(id, until).await
    }

    /// Raise `sub`'s epoch to `at` (ms).
    pub async fn bump_epoch(
        &self,
        sub: &str,
        at: i64,
    ) -> Result<i64, session_bridge_store::StoreError> {
        self.inner.revocation.bump_epoch(sub, at).await
    }

    /// The longest a token we mint can be accepted (its lifetime plus the
    /// largest leeway): how long killed ids must be remembered.
    pub fn max_token_ttl(&self) -> time::Duration {
        let ttl = self
            .inner
            .minter
            .ttl(TokenUse::Access)
            .max(self.inner.minter.ttl(TokenUse::Id))
            + crate::tokens::verify::MAX_LEEWAY;
        time::Duration::try_from(ttl).unwrap_or(time::Duration::DAY)
    }

    /// Mint an access token for a session-authenticated identity.
    pub fn mint_for(
        &self,
        identity: &Identity,
        family: &str,
    ) -> Result<MintedToken, crate::tokens::keys::KeyError> {
        self.inner
            .minter
            .access_token(&Subject::from(&identity.principal), family)
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
