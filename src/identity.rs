//! The one principal every handler sees, whatever proved it.

use serde::Serialize;
use time::OffsetDateTime;

/// The user: who they are, whoever vouched for them. The one type every
/// part of the crate speaks; stored forms convert with `From`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable subject id (`sub`). Never empty.
    pub sub: String,
    /// Login name, when known.
    pub username: Option<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Email address, when known.
    pub email: Option<String>,
    /// The issuer that authenticated the user (`iss`).
    pub issuer: String,
    /// When the user authenticated.
    #[serde(with = "time::serde::timestamp")]
    pub auth_time: OffsetDateTime,
}

impl Principal {
    /// A principal for `sub`, vouched for by `issuer`, authenticated now.
    pub fn new(sub: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            username: None,
            groups: Vec::new(),
            email: None,
            issuer: issuer.into(),
            auth_time: OffsetDateTime::now_utc(),
        }
    }

    /// With a login name.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into()).filter(|u: &String| !u.is_empty());
        self
    }

    /// With groups.
    #[must_use]
    pub fn with_groups<I, G>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = G>,
        G: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// With an email address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Authenticated at `at` instead of now.
    #[must_use]
    pub fn with_auth_time(mut self, at: OffsetDateTime) -> Self {
        self.auth_time = at;
        self
    }

    /// Whether the subject is usable: not empty, not only whitespace.
    pub fn has_subject(&self) -> bool {
        !self.sub.trim().is_empty()
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The authenticated principal and the credential that proved it on this
/// request: the same for a session cookie, a token cookie or an
/// `Authorization: Bearer` header.
///
/// Handlers take it as an extractor (`identity: Identity`, or
/// `Option<Identity>` on pages that also serve anonymous users). The user's
/// fields are reached through [`Deref`](std::ops::Deref) to [`Principal`]:
/// `identity.sub`, `identity.groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Who.
    #[serde(flatten)]
    pub principal: Principal,
    /// What proved it on this request.
    pub credential: Credential,
}

impl Identity {
    /// `principal`, proved by `credential`.
    pub fn new(principal: Principal, credential: Credential) -> Self {
        Self {
            principal,
            credential,
        }
    }
}

impl std::ops::Deref for Identity {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl From<Identity> for Principal {
    fn from(identity: Identity) -> Self {
        identity.principal
    }
}

/// The credential that proved an [`Identity`] on this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Which kind.
    pub kind: CredentialKind,
    /// A non-secret id: the session's token family for a session (never the
    /// session id itself, which is a bearer secret), the `jti` for a token.
    pub id: String,
    /// When this credential stops working (a session's current idle expiry,
    /// capped by its absolute lifetime; a token's `exp`).
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    /// For a session: when it ends at the latest, however active the user is.
    #[serde(
        with = "time::serde::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub absolute_expires_at: Option<OffsetDateTime>,
}

/// Which credential proved the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A server-side session, by its cookie.
    Session,
    /// A bridge token in the token cookie.
    TokenCookie,
    /// A token in `Authorization: Bearer`.
    Bearer,
    /// A login the legacy PHP app recorded in its own session, by the PHP
    /// session cookie (a [`CredentialSource`](crate::bridge::CredentialSource)
    /// such as the PHP session bridge).
    LegacySession,
}

impl CredentialKind {
    /// Label used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::TokenCookie => "token_cookie",
            Self::Bearer => "bearer",
            Self::LegacySession => "legacy_session",
        }
    }

    /// Whether a browser attaches it on its own (and so needs CSRF checks).
    pub fn is_cookie(self) -> bool {
        matches!(
            self,
            Self::Session | Self::TokenCookie | Self::LegacySession
        )
    }
}
