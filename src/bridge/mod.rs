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

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use session_bridge_store::RevocationStore;
use time::OffsetDateTime;

pub use config::Mode;
pub use cookies::Cookies;
pub use csrf::Csrf;
pub use layer::{BridgeLayer, BridgeService};
pub use policy::{RoutePolicy, RouteRule};
pub use rejection::AuthRejection;
pub use sessions::{LoadedSession, SessionError, Sessions};

use crate::identity::{Credential, CredentialKind, Identity};
use crate::tokens::mint::{MintedToken, Minter, Subject};
use crate::tokens::verify::{TokenUse, VerifiedToken, Verifier};

/// Everything a [`Bridge`] is built from.
#[derive(Debug)]
#[non_exhaustive]
pub struct BridgeParts {
    /// Sessions (store + revocation + lifetimes).
    pub sessions: Sessions,
    /// Epochs and killed ids.
    pub revocation: Arc<dyn RevocationStore>,
    /// Verifies our tokens and trusted issuers'.
    pub verifier: Verifier,
    /// Mints our tokens.
    pub minter: Minter,
    /// Cookie names and attributes.
    pub cookies: Cookies,
    /// Route rules.
    pub policy: RoutePolicy,
    /// CSRF rules.
    pub csrf: Csrf,
    /// Send browser navigations to this login path instead of a 401
    /// (`None`: always 401).
    pub login_redirect: Option<String>,
    /// The legacy PHP app's sessions, when shared (`[legacy_php]`).
    pub legacy: Option<Arc<crate::legacy::LegacySessions>>,
    /// A local replica of the revocation state for token checks.
    pub replica: Option<Arc<replica::RevocationReplica>>,
}

impl BridgeParts {
    /// Collect the parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sessions: Sessions,
        revocation: Arc<dyn RevocationStore>,
        verifier: Verifier,
        minter: Minter,
        cookies: Cookies,
        policy: RoutePolicy,
        csrf: Csrf,
        login_redirect: Option<String>,
    ) -> Self {
        Self {
            sessions,
            revocation,
            verifier,
            minter,
            cookies,
            policy,
            csrf,
            login_redirect,
            legacy: None,
            replica: None,
        }
    }

    /// Share the legacy PHP app's sessions: PHP logins authenticate, and
    /// the service's logins and logouts reach PHP.
    #[must_use]
    pub fn with_legacy(mut self, legacy: Option<Arc<crate::legacy::LegacySessions>>) -> Self {
        self.legacy = legacy;
        self
    }

    /// Check tokens against a local replica of the revocation state (no
    /// store round trip while it is fresh).
    #[must_use]
    pub fn with_replica(mut self, replica: Option<Arc<replica::RevocationReplica>>) -> Self {
        self.replica = replica;
        self
    }
}

/// The shared core of the library layer and the service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bridge {
    inner: Arc<BridgeParts>,
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
    /// Assemble a bridge.
    pub fn new(parts: BridgeParts) -> Self {
        Self {
            inner: Arc::new(parts),
        }
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

    /// The legacy PHP app's sessions, when shared.
    pub fn legacy(&self) -> Option<&crate::legacy::LegacySessions> {
        self.inner.legacy.as_deref()
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
    /// all, a login the legacy PHP app recorded is tried
    /// ([`crate::legacy`], when shared).
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
            Mode::Session => match session_cookie {
                Some(cookie) => self.by_session(cookie).await,
                None => self.by_legacy(headers).await,
            },
            Mode::Token => match (bearer, token_cookie) {
                (Some(token), _) => self.by_token(token, CredentialKind::Bearer).await,
                (None, Some(token)) => {
                    with_cookie(self.by_token(token, CredentialKind::TokenCookie).await)
                }
                (None, None) => Authn::Anonymous,
            },
            Mode::Either | Mode::Public | Mode::Shadow => {
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
                match session_cookie {
                    Some(cookie) => self.by_session(cookie).await,
                    None => self.by_legacy(headers).await,
                }
            }
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
            Err(err) => {
                tracing::warn!(error = %err, "session check failed: store unavailable");
                Authn::Rejected(AuthRejection::Unavailable)
            }
        }
    }

    /// No bridge credential: a login the PHP app recorded, if shared.
    async fn by_legacy(&self, headers: &HeaderMap) -> Authn {
        match &self.inner.legacy {
            Some(php) => {
                php.authenticate(headers, self.inner.revocation.as_ref())
                    .await
            }
            None => Authn::Anonymous,
        }
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
                sub: c.sub,
                username: c.username,
                groups: c.groups,
                email: c.email,
                auth_time: auth_time.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                issuer: c.iss,
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
    /// three lookups run concurrently.
    async fn token_revoked(
        &self,
        verified: &VerifiedToken,
    ) -> Result<bool, session_bridge_store::StoreError> {
        let c = &verified.claims;
        let ids: Vec<&str> = [c.jti.as_deref(), c.origin_jti.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let local = self
            .inner
            .replica
            .as_ref()
            .and_then(|r| r.token_state(&c.sub, &ids));
        let (killed, epoch) = match local {
            Some(state) => (state.killed, state.epoch),
            None => {
                let store = &self.inner.revocation;
                let jti = async {
                    match &c.jti {
                        Some(id) => store.is_killed(id).await,
                        None => Ok(false),
                    }
                };
                let family = async {
                    match &c.origin_jti {
                        Some(id) => store.is_killed(id).await,
                        None => Ok(false),
                    }
                };
                let (jti, family, epoch) = tokio::join!(jti, family, store.epoch(&c.sub));
                (jti? || family?, epoch?)
            }
        };
        if killed {
            return Ok(true);
        }
        // `iat` has one-second resolution: a token issued in the same second
        // as a "log out everywhere" counts as issued before it (fail closed).
        Ok(match epoch {
            Some(epoch) => c
                .iat
                .or(c.auth_time)
                .is_none_or(|iat| iat.saturating_mul(1000) <= epoch),
            None => false,
        })
    }

    /// Kill a token id (`jti` or a family's `origin_jti`) until `until`, in
    /// the store and in the local replica.
    pub async fn kill(
        &self,
        id: &str,
        until: OffsetDateTime,
    ) -> Result<(), session_bridge_store::StoreError> {
        self.inner.revocation.kill(id, until).await?;
        if let Some(replica) = &self.inner.replica {
            replica.note(session_bridge_store::Change::Killed {
                id: id.to_owned(),
                expires_at: until,
            });
        }
        Ok(())
    }

    /// Raise `sub`'s epoch to `at` (ms), in the store and in the replica.
    pub async fn bump_epoch(
        &self,
        sub: &str,
        at: i64,
    ) -> Result<i64, session_bridge_store::StoreError> {
        let epoch = self.inner.revocation.bump_epoch(sub, at).await?;
        if let Some(replica) = &self.inner.replica {
            replica.note(session_bridge_store::Change::Epoch {
                user: sub.to_owned(),
                epoch,
            });
        }
        Ok(epoch)
    }

    /// Mint an access token for a session-authenticated identity.
    pub fn mint_for(
        &self,
        identity: &Identity,
        family: &str,
    ) -> Result<MintedToken, crate::tokens::keys::KeyError> {
        let mut subject = Subject::new(identity.sub.clone())
            .with_groups(identity.groups.clone())
            .with_auth_time(identity.auth_time);
        if let Some(username) = &identity.username {
            subject = subject.with_username(username.clone());
        }
        if let Some(email) = &identity.email {
            subject = subject.with_email(email.clone());
        }
        self.inner.minter.access_token(&subject, family)
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
