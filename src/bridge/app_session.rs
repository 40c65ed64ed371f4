//! The application's own data (a cart, a flash message, a form draft) in
//! the bridge's session record, through tower-sessions' [`Session`].
//!
//! The bridge reads the record once per request to authenticate; the
//! `Session` handed to the handlers starts from that same record, so a
//! handler that reads or writes its data costs no second read. Anonymous
//! visitors get a session too, created the first time a handler writes to
//! it; [`Bridge::login`] later cycles its id and keeps its data, as
//! axum-login does, and [`Bridge::logout`] deletes it.
//!
//! Concurrent writers: like tower-sessions, the whole record is written
//! back, so two requests of one browser that change the data at the same
//! time race and the last writer wins.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use axum::http::{HeaderMap, header};
use session_bridge_store::{Id, Record, SessionStore};
use time::OffsetDateTime;
pub use tower_sessions_core::Session;
use tower_sessions_core::session::Expiry;
use tower_sessions_core::session_store;

use super::sessions::{IDENTITY_KEY, SessionIdentity};
use super::{AuthRejection, Bridge, cookies};
use crate::identity::{Identity, Principal};

tokio::task_local! {
    /// The record the bridge loaded while authenticating this request.
    static LOADED: RefCell<Option<Record>>;
}

/// Keep `record` for the application's `Session` of the current request
/// (a no-op outside the layer).
pub(crate) fn stash(record: Record) {
    let _ = LOADED.try_with(|slot| *slot.borrow_mut() = Some(record));
}

/// Run `f` (the authentication) and return what it produced and the record
/// it loaded, if any.
pub(crate) async fn scoped<F: Future>(f: F) -> (F::Output, Option<Record>) {
    LOADED
        .scope(RefCell::new(None), async move {
            let out = f.await;
            let loaded = LOADED.with(|slot| slot.borrow_mut().take());
            (out, loaded)
        })
        .await
}

/// The store behind a request's `Session`: the record the bridge already
/// loaded is served once without a round trip; everything else goes to the
/// real store.
#[derive(Debug)]
struct Preloaded {
    store: Arc<dyn SessionStore>,
    record: Mutex<Option<Record>>,
}

#[async_trait]
impl SessionStore for Preloaded {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.store.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let preloaded = {
            let mut slot = self.record.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(r) if r.id == *id => slot.take(),
                _ => None,
            }
        };
        match preloaded {
            Some(record) => Ok(Some(record)),
            None => self.store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete(id).await
    }
}

/// The application's `Session` for a request, and the id it started with.
pub(crate) fn for_request(
    bridge: &Bridge,
    headers: &HeaderMap,
    loaded: Option<Record>,
) -> (Session, Option<Id>) {
    let sessions = bridge.sessions();
    let cookie_id = cookies::read(headers, bridge.cookies().session_name())
        .and_then(|c| c.parse::<Id>().ok().filter(|id| id.to_string() == c));
    let idle = time::Duration::try_from(sessions.idle_ttl()).unwrap_or(time::Duration::MINUTE);
    let (expiry, record) = match loaded {
        // Keep the expiry the bridge manages (idle, capped by the login's
        // absolute end).
        Some(record) if Some(record.id) == cookie_id => {
            (Expiry::AtDateTime(record.expiry_date), Some(record))
        }
        _ => (Expiry::OnInactivity(idle), None),
    };
    let store = Arc::new(Preloaded {
        store: Arc::clone(sessions.store()),
        record: Mutex::new(record),
    });
    (Session::new(cookie_id, store, Some(expiry)), cookie_id)
}

/// After the handler: write the session back when it changed and tell the
/// browser about a new id or an ended session.
pub(crate) async fn persist(
    bridge: &Bridge,
    session: &Session,
    before: Option<Id>,
    headers: &mut HeaderMap,
) -> Result<(), AuthRejection> {
    if !session.is_modified() {
        return Ok(());
    }
    let unavailable = |err: tower_sessions_core::session::Error| {
        tracing::warn!(error = %err, "could not save the session: store unavailable");
        AuthRejection::Unavailable
    };
    if session.is_empty().await {
        if before.is_some() {
            if session.id().is_some() {
                session.delete().await.map_err(unavailable)?;
            }
            super::layer::clear_cookies(bridge, headers);
        }
        return Ok(());
    }
    session.save().await.map_err(unavailable)?;
    if let Some(id) = session.id().filter(|id| Some(*id) != before) {
        let max_age = time::Duration::try_from(bridge.sessions().absolute_ttl())
            .unwrap_or(time::Duration::HOUR);
        headers.append(
            header::SET_COOKIE,
            bridge.cookies().set_session(id.to_string(), max_age),
        );
    }
    Ok(())
}

/// Why [`Bridge::login`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionLoginError {
    /// The principal has no subject, or authenticated longer ago than the
    /// absolute session lifetime.
    #[error("the principal cannot start a session")]
    Invalid,
    /// The session or revocation store could not be reached.
    #[error("session store unavailable")]
    Unavailable,
}

impl Bridge {
    /// Log `user` in on this request's session: the bridge's identity goes
    /// into the record and its id is cycled (no fixation); the
    /// application's data stays, unless it belonged to another user. The
    /// layer saves the session and sets the cookie after the handler.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use session_bridge::bridge::Bridge;
    /// use session_bridge::{Principal, Session};
    ///
    /// async fn login(bridge: Bridge, session: Session) -> impl IntoResponse {
    ///     // ... check the password, then:
    ///     let user = Principal::new("7d9f-…", "https://app.example.com").with_username("alice");
    ///     match bridge.login(&session, &user).await {
    ///         Ok(identity) => format!("hello {}", identity.sub).into_response(),
    ///         Err(err) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    ///     }
    /// }
    /// ```
    pub async fn login(
        &self,
        session: &Session,
        user: &Principal,
    ) -> Result<Identity, SessionLoginError> {
        let stored: Option<SessionIdentity> = session
            .get(IDENTITY_KEY)
            .await
            .map_err(|_| SessionLoginError::Unavailable)?;
        if stored.is_some_and(|s| s.sub != user.sub) {
            // Another user's data is not carried into this login.
            session.clear().await;
        }
        self.wait_past_epoch(&user.sub)
            .await
            .map_err(|_| SessionLoginError::Unavailable)?;
        let (identity, expires_at) = self
            .sessions()
            .new_identity(user, None)
            .map_err(|_| SessionLoginError::Invalid)?;
        session
            .insert(IDENTITY_KEY, &identity)
            .await
            .map_err(|_| SessionLoginError::Unavailable)?;
        session.set_expiry(Some(Expiry::AtDateTime(expires_at)));
        session
            .cycle_id()
            .await
            .map_err(|_| SessionLoginError::Unavailable)?;
        Ok(identity.to_identity(expires_at))
    }

    /// Log this request's session out: its token family is killed (tokens
    /// minted from it stop working) and the record, with the application's
    /// data, is deleted. The layer clears the cookies.
    pub async fn logout(&self, session: &Session) -> Result<(), AuthRejection> {
        let stored: Option<SessionIdentity> = session.get(IDENTITY_KEY).await.ok().flatten();
        if let Some(identity) = stored {
            let until = OffsetDateTime::now_utc() + self.max_token_ttl();
            self.kill(&identity.family, until).await.map_err(|err| {
                tracing::warn!(error = %crate::error_chain(&err), "logout failed: revocation store unavailable");
                AuthRejection::Unavailable
            })?;
        }
        session.flush().await.map_err(|err| {
            tracing::warn!(error = %err, "logout failed: session store unavailable");
            AuthRejection::Unavailable
        })
    }

    /// Tokens carry `iat` in whole seconds and die when issued in the second
    /// of a "log out everywhere": a login right after one waits for the
    /// next second so its tokens are not born dead.
    pub(crate) async fn wait_past_epoch(
        &self,
        sub: &str,
    ) -> Result<(), session_bridge_store::StoreError> {
        if let Some(epoch) = self.revocation().epoch(sub).await? {
            let now = super::sessions::unix_ms(OffsetDateTime::now_utc());
            if epoch >= now - 1000 {
                let wait = (epoch / 1000 + 1) * 1000 - now;
                tokio::time::sleep(std::time::Duration::from_millis(
                    u64::try_from(wait.clamp(0, 1000)).unwrap_or(0),
                ))
                .await;
            }
        }
        Ok(())
    }
}
