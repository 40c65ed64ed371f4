//! Server-side sessions: created at login, loaded from the cookie, extended
//! lazily, ended by logout, their absolute lifetime or the user's epoch.
//!
//! Records are tower-sessions `Record`s in any [`SessionStore`]; the bridge
//! keeps its identity under one key ([`IDENTITY_KEY`]) and leaves the rest of
//! the record to the application.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_bridge_store::{Id, Record, RevocationStore, SessionStore};
use time::OffsetDateTime;

use super::config::SessionConfig;
use crate::identity::Principal;
use crate::identity::{Credential, CredentialKind, Identity};

/// Key of the bridge's identity in a session record.
pub const IDENTITY_KEY: &str = "bridge.identity";

/// What the bridge keeps in a session record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIdentity {
    /// Subject.
    pub sub: String,
    /// Login name.
    #[serde(default)]
    pub username: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Issuer that authenticated the user.
    pub iss: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// When the session was created (Unix milliseconds), compared with the
    /// user's epoch.
    pub created_ms: i64,
    /// Token family of this session (`origin_jti` of tokens minted from it).
    pub family: String,
    /// Absolute end of the session (Unix seconds).
    pub absolute_exp: i64,
}

/// A session that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedSession {
    /// The session id (a secret: never log it).
    pub id: Id,
    /// The bridge's identity record.
    pub identity: SessionIdentity,
    /// Current idle expiry.
    pub expires_at: OffsetDateTime,
}

impl LoadedSession {
    /// When the session ends at the latest.
    pub fn absolute_expires_at(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.identity.absolute_exp).unwrap_or(self.expires_at)
    }

    /// The identity this session proves.
    pub fn to_identity(&self) -> Identity {
        self.identity.to_identity(self.expires_at)
    }
}

impl SessionIdentity {
    /// The identity a session with this record proves while it lasts until
    /// `expires_at`.
    pub fn to_identity(&self, expires_at: OffsetDateTime) -> Identity {
        let s = self;
        Identity {
            principal: Principal {
                sub: s.sub.clone(),
                username: s.username.clone(),
                groups: s.groups.clone(),
                email: s.email.clone(),
                auth_time: OffsetDateTime::from_unix_timestamp(s.auth_time)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                issuer: s.iss.clone(),
            },
            credential: Credential {
                kind: CredentialKind::Session,
                id: s.family.clone(),
                expires_at,
                absolute_expires_at: OffsetDateTime::from_unix_timestamp(s.absolute_exp).ok(),
            },
        }
    }
}

/// Why a session cookie did not authenticate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not a session id, unknown, expired, or not a bridge session.
    #[error("invalid or expired session")]
    Invalid,
    /// The user logged out everywhere after this session was created.
    #[error("session revoked")]
    Revoked,
    /// A live session that holds only the application's data: nobody has
    /// logged in on it (yet).
    #[error("session without a login")]
    NoLogin,
    /// The store failed or could not be reached.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

/// Session operations over the configured stores.
#[derive(Debug, Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    revocation: Arc<dyn RevocationStore>,
    idle: Duration,
    absolute: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl Sessions {
    /// Sessions in `store`, checked against `revocation`.
    pub fn new(
        store: Arc<dyn SessionStore>,
        revocation: Arc<dyn RevocationStore>,
        cfg: &SessionConfig,
    ) -> Self {
        Self {
            store,
            revocation,
            idle: cfg.idle_ttl,
            absolute: cfg.absolute_ttl,
        }
    }

    /// The revocation state sessions are checked against (always the
    /// store itself: sessions outlive a replica's change log).
    pub fn revocation(&self) -> &dyn RevocationStore {
        self.revocation.as_ref()
    }

    /// The store the records live in.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The idle lifetime.
    pub fn idle_ttl(&self) -> Duration {
        self.idle
    }

    /// The absolute session lifetime.
    pub fn absolute_ttl(&self) -> Duration {
        self.absolute
    }

    /// Create a new session for `user` with a fresh id (never one the client
    /// chose: no fixation). `family` is the token family; a new one when
    /// `None`.
    pub async fn create(
        &self,
        user: &Principal,
        family: Option<String>,
    ) -> Result<LoadedSession, SessionError> {
        let (identity, expires_at) = self.new_identity(user, family)?;
        let value = serde_json::to_value(&identity).map_err(unavailable)?;
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([(IDENTITY_KEY.to_owned(), value)]),
            expiry_date: expires_at,
        };
        self.store.create(&mut record).await.map_err(unavailable)?;
        Ok(LoadedSession {
            id: record.id,
            identity,
            expires_at,
        })
    }

    /// The identity record of a new login of `user` and the session's first
    /// expiry. Refuses a principal without a subject, and an authentication
    /// older than the absolute lifetime.
    pub(crate) fn new_identity(
        &self,
        user: &Principal,
        family: Option<String>,
    ) -> Result<(SessionIdentity, OffsetDateTime), SessionError> {
        if !user.has_subject() {
            return Err(SessionError::Invalid);
        }
        let now = OffsetDateTime::now_utc();
        // The absolute lifetime runs from authentication, not from this
        // record: a session linked to a token (itself minted from an older
        // session) must not extend the login past its end.
        let absolute = user.auth_time.min(now) + self.absolute;
        if absolute <= now {
            return Err(SessionError::Invalid);
        }
        let expires_at = (now + self.idle).min(absolute);
        let identity = SessionIdentity {
            sub: user.sub.clone(),
            username: user.username.clone(),
            groups: user.groups.clone(),
            email: user.email.clone(),
            iss: user.issuer.clone(),
            auth_time: user.auth_time.unix_timestamp(),
            created_ms: unix_ms(now),
            family: family.unwrap_or_else(crate::tokens::mint::new_jti),
            absolute_exp: absolute.unix_timestamp(),
        };
        Ok((identity, expires_at))
    }

    /// Load and check the session named by a cookie value; extends its idle
    /// expiry when less than half of it is left.
    pub async fn load(&self, cookie: &str) -> Result<LoadedSession, SessionError> {
        // Only the canonical encoding of an id is accepted, so a tampered or
        // truncated cookie never reaches the store.
        let id = Id::from_str(cookie).map_err(|_| SessionError::Invalid)?;
        if id.to_string() != cookie {
            return Err(SessionError::Invalid);
        }
        let mut record = self
            .store
            .load(&id)
            .await
            .map_err(unavailable)?
            .ok_or(SessionError::Invalid)?;
        let now = OffsetDateTime::now_utc();
        if record.expiry_date <= now {
            return Err(SessionError::Invalid);
        }
        let Some(value) = record.data.get(IDENTITY_KEY) else {
            // The application's data only: extended like a login's, and
            // handed to the application's `Session` without a second read.
            if record.expiry_date - now < self.idle / 2 {
                record.expiry_date = now + self.idle;
                self.store.save(&record).await.map_err(unavailable)?;
            }
            super::app_session::stash(record);
            return Err(SessionError::NoLogin);
        };
        let identity: SessionIdentity =
            serde_json::from_value(value.clone()).map_err(|_| SessionError::Invalid)?;
        if identity.absolute_exp <= now.unix_timestamp() || identity.sub.trim().is_empty() {
            return Err(SessionError::Invalid);
        }
        // The user's epoch ("log out everywhere") and the session's token
        // family (killed by the logout of any session or token linked to it).
        let (epoch, family_killed) = tokio::join!(
            self.revocation.epoch(&identity.sub),
            self.revocation.is_killed(&identity.family)
        );
        let epoch = epoch.map_err(unavailable)?;
        if family_killed.map_err(unavailable)? || epoch.is_some_and(|e| identity.created_ms < e) {
            // Logged out: this record is dead for good.
            let _ = self.store.delete(&id).await;
            return Err(SessionError::Revoked);
        }
        let absolute = OffsetDateTime::from_unix_timestamp(identity.absolute_exp).unwrap_or(now);
        let left = record.expiry_date - now;
        if left < self.idle / 2 && record.expiry_date < absolute {
            record.expiry_date = (now + self.idle).min(absolute);
            self.store.save(&record).await.map_err(unavailable)?;
        }
        let expires_at = record.expiry_date;
        super::app_session::stash(record);
        Ok(LoadedSession {
            id,
            identity,
            expires_at,
        })
    }

    /// Delete a session.
    pub async fn destroy(&self, id: &Id) -> Result<(), SessionError> {
        self.store.delete(id).await.map_err(unavailable)
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
