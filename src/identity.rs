//! The one principal every handler sees, whatever proved it.

use serde::Serialize;
use time::OffsetDateTime;

/// The authenticated principal: the same for a session cookie, a token
/// cookie or an `Authorization: Bearer` header.
///
/// Handlers take it as an extractor (`identity: Identity`, or
/// `Option<Identity>` on pages that also serve anonymous users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Stable subject id (`sub`).
    pub sub: String,
    /// Login name, when known.
    pub username: Option<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Email address, when known.
    pub email: Option<String>,
    /// When the user authenticated.
    #[serde(with = "time::serde::timestamp")]
    pub auth_time: OffsetDateTime,
    /// The issuer that authenticated the user (`iss`).
    pub issuer: String,
    /// What proved the identity on this request.
    pub credential: Credential,
}

impl Identity {
    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
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
    /// session cookie (`[legacy_php]`, see [`crate::legacy`]).
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
