//! The legacy PHP app's own sessions, shared with the bridge
//! (`[legacy_php]`, on the [`session_bridge_php`] adapter).
//!
//! - **Login through the bridge** → a PHP session record holding the
//!   bridge's identity (`$_SESSION['bridge']`: sub, username, groups,
//!   auth_time, iss) and the PHP session cookie, so PHP pages see the user.
//!   The record always gets a new id ([`new_session_id`]), as PHP apps do
//!   with `session_regenerate_id` at login: an id the browser already had
//!   may have been planted (session fixation). Data the PHP app kept in the
//!   browser's previous session (a cart, a language) is carried over unless
//!   that session names another user; the previous record is deleted.
//! - **Logout through the bridge** (one or everywhere) → the browser's PHP
//!   session record is deleted and its cookie cleared, and so are the
//!   records of the logged-out token family (one logout) or of the user
//!   (everywhere) on other devices: the bridge indexes, per user and in the
//!   PHP store, the PHP sessions it creates or accepts
//!   ([`session_bridge_php::index`]).
//! - **Expiry**: a PHP session the bridge accepts is extended as PHP would
//!   extend it (lazily, at most once per tenth of `gc_maxlifetime`, only
//!   when PHP's lock is free), and its credential reports the record's real
//!   expiry.
//! - **A login the PHP app recorded** (`$_SESSION['user_id']`, read through
//!   a [`LoginMapping`]) proves an [`Identity`] with
//!   [`CredentialKind::LegacySession`] on routes that accept sessions, when
//!   no bridge credential is presented. The bridge stamps its identity into
//!   that session the first time it accepts it; the stamp's `auth_time` (or
//!   the app's own login time, `login_mapping.auth_time_key`) is checked
//!   against the user's epoch, so "log out everywhere" also ends PHP
//!   sessions the bridge has seen (the record is deleted when next
//!   presented). Its token family is derived from the PHP session id, so
//!   a logout through the bridge kills the tokens minted from it.
//!
//! Every write is the adapter's read-modify-write: values PHP pages wrote
//! survive the bridge's updates.

pub mod config;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use session_bridge_php::{
    BridgeIdentity, DEFAULT_GC_MAXLIFETIME, DEFAULT_IDENTITY_KEY, DynamoLocking, Error as PhpError,
    Format, IndexedSession, LoginMapping, PhpDynamoDbStore, PhpRedisStore, PhpSession,
    PhpSessionStore, RedisLocking, new_session_id, validate_session_id,
};
use session_bridge_store::RevocationStore;
use time::OffsetDateTime;

pub use config::{LegacyPhpConfig, LegacyStoreKind, LoginMappingConfig, PhpFormat};

use crate::bridge::sessions::unix_ms;
use crate::bridge::{
    AuthRejection, Authenticated, Authn, Bridge, CredentialSource, LogoutScope, cookies,
};
use crate::config::Config;
use crate::identity::{Credential, CredentialKind, Identity, Principal};

/// Why the PHP session store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// `[legacy_php]` uses Redis but names no URL (and the main store is not
    /// Redis).
    #[error("legacy_php.redis.url is required")]
    MissingRedisUrl,
    /// The Redis client refused its settings.
    #[error("cannot set up the Redis client for PHP sessions")]
    Redis(#[source] session_bridge_php::fred::error::Error),
}

/// The PHP app's session records, as the bridge reads and writes them.
///
/// Cheap to share (`Arc`); built from `[legacy_php]` by
/// [`open`](Self::open), or from any [`PhpSessionStore`] with
/// [`new`](Self::new).
#[derive(Clone)]
pub struct LegacySessions {
    store: Arc<dyn PhpSessionStore>,
    cookie_name: String,
    identity_key: String,
    mapping: LoginMapping,
    accept_logins: bool,
    lifetime: Duration,
    secure: bool,
}

impl std::fmt::Debug for LegacySessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacySessions")
            .field("cookie_name", &self.cookie_name)
            .field("identity_key", &self.identity_key)
            .field("mapping", &self.mapping)
            .field("accept_logins", &self.accept_logins)
            .field("lifetime", &self.lifetime)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl LegacySessions {
    /// PHP sessions in `store` with PHP's defaults: cookie `PHPSESSID`,
    /// identity under `$_SESSION['bridge']`, PHP logins read from
    /// `$_SESSION['user_id']` and accepted, records living 1440 s, cookie
    /// not `Secure`.
    ///
    /// ```no_run
    /// # async fn demo(pool: session_bridge_php::fred::clients::Pool) {
    /// use std::sync::Arc;
    /// use session_bridge::legacy::LegacySessions;
    /// use session_bridge_php::{LoginMapping, PhpRedisStore};
    ///
    /// let php = LegacySessions::new(Arc::new(PhpRedisStore::new(pool)))
    ///     .with_login_mapping(LoginMapping {
    ///         username_key: Some("username".into()),
    ///         ..LoginMapping::default()
    ///     })
    ///     .with_secure_cookie(true);
    /// # let _ = php; }
    /// ```
    pub fn new(store: Arc<dyn PhpSessionStore>) -> Self {
        Self {
            store,
            cookie_name: "PHPSESSID".to_owned(),
            identity_key: DEFAULT_IDENTITY_KEY.to_owned(),
            mapping: LoginMapping::default(),
            accept_logins: true,
            lifetime: DEFAULT_GC_MAXLIFETIME,
            secure: false,
        }
    }

    /// PHP's `session.name`.
    #[must_use]
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Session key of the bridge's identity.
    #[must_use]
    pub fn with_identity_key(mut self, key: impl Into<String>) -> Self {
        self.identity_key = key.into();
        self
    }

    /// How a PHP-side login reads in `$_SESSION`.
    #[must_use]
    pub fn with_login_mapping(mut self, mapping: LoginMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Whether a PHP-side login authenticates requests.
    #[must_use]
    pub fn with_accept_php_logins(mut self, accept: bool) -> Self {
        self.accept_logins = accept;
        self
    }

    /// PHP's `session.gc_maxlifetime` (how long a PHP login lasts unused).
    #[must_use]
    pub fn with_gc_maxlifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Mark the PHP session cookie `Secure`.
    #[must_use]
    pub fn with_secure_cookie(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The store `cfg` names, with its own client (connected lazily: an
    /// unreachable server does not stop startup). Connection settings not
    /// given in `[legacy_php]` come from the main `[store]`.
    pub async fn open(cfg: &LegacyPhpConfig, config: &Config) -> Result<Self, LegacyError> {
        let format = Format::from(cfg.format);
        let store: Arc<dyn PhpSessionStore> = match cfg.store {
            LegacyStoreKind::Redis => {
                let url = cfg.redis_url(config).ok_or(LegacyError::MissingRedisUrl)?;
                let client = session_bridge_php::fred::types::config::Config::from_url(url)
                    .map_err(LegacyError::Redis)?;
                let pool = session_bridge_redis::recommended_builder(client, cfg.redis.timeout)
                    .build_pool(2)
                    .map_err(LegacyError::Redis)?;
                // Spawns the connection tasks and returns at once.
                let _connections = session_bridge_php::fred::interfaces::ClientLike::connect(&pool);
                let mut store = PhpRedisStore::new(pool)
                    .with_prefix(cfg.key_prefix.clone())
                    .with_format(format)
                    .with_gc_maxlifetime(cfg.gc_maxlifetime)
                    .with_timeout(cfg.redis.timeout);
                if cfg.locking {
                    store = store.with_locking(RedisLocking::default());
                }
                Arc::new(store)
            }
            LegacyStoreKind::DynamoDb => {
                let mut settings = config.store.dynamodb.clone();
                if cfg.dynamodb.region.is_some() {
                    settings.region.clone_from(&cfg.dynamodb.region);
                }
                if cfg.dynamodb.endpoint_url.is_some() {
                    settings.endpoint_url.clone_from(&cfg.dynamodb.endpoint_url);
                }
                settings.timeout = cfg.dynamodb.timeout;
                let (client, _) = crate::stores::dynamodb_client(&settings).await;
                let mut store =
                    PhpDynamoDbStore::new(client, cfg.dynamo_layout()).with_format(format);
                if cfg.locking {
                    store = store.with_locking(DynamoLocking::default());
                }
                Arc::new(store)
            }
        };
        Ok(Self::new(store)
            .with_cookie_name(cfg.cookie_name.clone())
            .with_identity_key(cfg.identity_key.clone())
            .with_login_mapping(LoginMapping::from(&cfg.login_mapping))
            .with_accept_php_logins(cfg.accept_php_logins)
            .with_gc_maxlifetime(cfg.gc_maxlifetime)
            .with_secure_cookie(config.secure_cookies()))
    }

    /// The PHP session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The PHP session id the request carries, if it is one PHP accepts.
    pub fn session_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookies::read(headers, &self.cookie_name).filter(|id| validate_session_id(id).is_ok())
    }

    /// Authenticate by a login the PHP app recorded in the session the
    /// request's PHP cookie names: `Anonymous` when there is none (no
    /// cookie, no record, nobody logged in, or PHP logins not accepted);
    /// `Revoked` (and the record deleted) when the user logged out
    /// everywhere after that login or the session was logged out through
    /// the bridge.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        revocation: &dyn RevocationStore,
    ) -> Authn {
        if !self.accept_logins {
            return Authn::Anonymous;
        }
        let Some(id) = self.session_id(headers) else {
            return Authn::Anonymous;
        };
        let (session, mut expires_at) = match self.store.load_record(id).await {
            Ok(Some(record)) => (record.session, record.expires_at),
            Ok(None) => return Authn::Anonymous,
            Err(err) => return refused(&err),
        };
        let login = match session.identity_from_mapping(&self.mapping) {
            Ok(Some(login)) => login,
            Ok(None) => return Authn::Anonymous,
            Err(err) => {
                tracing::warn!(error = %err, "a PHP session's login does not match login_mapping; ignored");
                return Authn::Anonymous;
            }
        };
        let stamp = session
            .get_bridge_identity(&self.identity_key)
            .ok()
            .flatten()
            .filter(|s| s.sub == login.sub);
        let family = family_of(id);
        let (epoch, killed) =
            tokio::join!(revocation.epoch(&login.sub), revocation.is_killed(&family));
        let (epoch, killed) = match (epoch, killed) {
            (Ok(epoch), Ok(killed)) => (epoch, killed),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %crate::error_chain(&err), "PHP login check failed: revocation store unavailable");
                return Authn::Rejected(AuthRejection::Unavailable);
            }
        };
        let known = login
            .auth_time
            .or_else(|| stamp.as_ref().and_then(|s| s.auth_time));
        // Same rule as tokens: a login in the epoch's second counts as
        // before it (fail closed).
        let before_epoch =
            matches!((known, epoch), (Some(t), Some(e)) if t.saturating_mul(1000) <= e);
        if killed || before_epoch {
            if let Err(err) = self.store.delete(id).await {
                tracing::warn!(error = %err, "could not delete a revoked PHP session");
            }
            return Authn::Rejected(AuthRejection::Revoked);
        }
        let auth_time = match known {
            Some(t) => t,
            None => first_seen(epoch).await,
        };
        let identity = BridgeIdentity {
            auth_time: Some(auth_time),
            ..login
        };
        if stamp.as_ref() != Some(&identity) {
            // Indexed before it is stamped: "log out everywhere" must find
            // every session the bridge vouches for.
            if let Err(err) = self.remember(&identity.sub, id, &family).await {
                return refused(&err);
            }
            // PHP pages see whom the bridge accepted, and the stamp dates
            // the login for later epoch checks. The write renews the
            // record's expiry, as PHP's would.
            match self
                .store
                .write_identity(id, &self.identity_key, &identity)
                .await
            {
                Ok(_) => expires_at = Some(self.full_expiry()),
                Err(err) => {
                    if known.is_none() || err.is_unavailable() {
                        return refused(&err);
                    }
                    tracing::warn!(error = %err, "could not stamp the bridge identity into a PHP session");
                }
            }
        } else if self.extension_due(expires_at) {
            expires_at = self.extend(&identity.sub, id, &family).await.or(expires_at);
        }
        let now = OffsetDateTime::now_utc();
        let expires_at = expires_at
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .unwrap_or(now + self.lifetime);
        Authn::Authenticated(Authenticated {
            identity: Identity {
                principal: Principal {
                    sub: identity.sub,
                    username: identity.username,
                    groups: identity.groups,
                    email: None,
                    auth_time: OffsetDateTime::from_unix_timestamp(auth_time)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    issuer: identity.iss,
                },
                credential: Credential {
                    kind: CredentialKind::LegacySession,
                    id: family.clone(),
                    // The record's own expiry: what PHP will honour.
                    expires_at,
                    absolute_expires_at: None,
                },
            },
            session: None,
            family: Some(family),
            session_cookie_present: false,
        })
    }

    /// Start the PHP session of a login through the bridge: a record under
    /// a new id holding `identity` (and the data of the browser's previous
    /// PHP session, unless it names another user), in the user's index
    /// under token `family` (the bridge session's). Returns the new id.
    pub async fn start(
        &self,
        headers: &HeaderMap,
        identity: &BridgeIdentity,
        family: &str,
    ) -> Result<String, PhpError> {
        let previous = match self.session_id(headers) {
            Some(old) => match self.store.load(old).await {
                Ok(session) => Some((old, session)),
                Err(err) if err.is_unavailable() => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, "the previous PHP session is unreadable; not carried over");
                    Some((old, None))
                }
            },
            None => None,
        };
        let id = new_session_id();
        // Indexed before the record exists: never a record that "log out
        // everywhere" cannot find.
        self.remember(&identity.sub, &id, family).await?;
        let key = self.identity_key.as_str();
        let mut written = false;
        if let Some((_, Some(old))) = &previous
            && self.belongs_to(old, &identity.sub)
        {
            let mut carry = |s: &mut PhpSession| {
                *s = old.clone();
                s.set_bridge_identity(key, identity);
                Ok(())
            };
            match self.store.update(&id, &mut carry).await {
                Ok(_) => written = true,
                Err(err) if err.is_unavailable() => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, "could not carry the PHP session's data over; starting an empty one")
                }
            }
        }
        if !written {
            self.store.write_identity(&id, key, identity).await?;
        }
        if let Some((old, _)) = previous
            && let Err(err) = self.store.delete(old).await
        {
            // It holds no identity of ours and the browser no longer names
            // it: it expires on its own.
            tracing::warn!(error = %err, "could not delete the previous PHP session");
        }
        Ok(id)
    }

    /// Whether a previous session may be carried into `sub`'s login: it
    /// names no other user, neither as a PHP login nor as our identity.
    fn belongs_to(&self, session: &PhpSession, sub: &str) -> bool {
        let php = session.identity_from_mapping(&self.mapping);
        let ours = session.get_bridge_identity(&self.identity_key);
        let php_ok = matches!(&php, Ok(None)) || matches!(&php, Ok(Some(l)) if l.sub == sub);
        let ours_ok = matches!(&ours, Ok(None)) || matches!(&ours, Ok(Some(b)) if b.sub == sub);
        php_ok && ours_ok
    }

    /// End every PHP session in `sub`'s index (only token `family`'s when
    /// given): delete the records, waiting for PHP's lock when locking is
    /// on. Returns how many there were.
    pub async fn end_sessions_of(
        &self,
        sub: &str,
        family: Option<&str>,
    ) -> Result<usize, PhpError> {
        self.store.end_sessions_of(sub, family).await
    }

    /// Add PHP session `id` to `sub`'s index, expiring with a record
    /// written now.
    async fn remember(&self, sub: &str, id: &str, family: &str) -> Result<(), PhpError> {
        let entry = IndexedSession {
            id: id.to_owned(),
            family: family.to_owned(),
            expires_at: self.full_expiry(),
        };
        self.store.remember(sub, &entry).await
    }

    /// When a record written now expires (Unix seconds).
    fn full_expiry(&self) -> i64 {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_add(lifetime)
    }

    /// Whether a record expiring at `expires_at` is due for an extension:
    /// at most one per [`EXTEND_EVERY`]th of the lifetime, as the bridge's
    /// own sessions are extended lazily.
    fn extension_due(&self, expires_at: Option<i64>) -> bool {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        expires_at.is_none_or(|e| self.full_expiry() - e >= (lifetime / EXTEND_EVERY).max(1))
    }

    /// Extend PHP session `id`'s record (indexed first, so the index never
    /// ends before the record); its new expiry, or `None` when it was not
    /// extended. Failures only cost the extension: the record lives on
    /// until its current expiry.
    async fn extend(&self, sub: &str, id: &str, family: &str) -> Option<i64> {
        if let Err(err) = self.remember(sub, id, family).await {
            tracing::warn!(error = %err, "could not index a PHP session; not extended");
            return None;
        }
        match self.store.touch(id).await {
            Ok(expires_at) => expires_at,
            Err(err) => {
                tracing::warn!(error = %err, "could not extend a PHP session");
                None
            }
        }
    }

    /// End the PHP session the request's cookie names (delete its record,
    /// waiting for PHP's lock when locking is on); whether there was one.
    pub async fn end(&self, headers: &HeaderMap) -> Result<bool, PhpError> {
        match self.session_id(headers) {
            Some(id) => self.store.delete(id).await,
            None => Ok(false),
        }
    }

    fn cookie(&self, value: String, clear: bool) -> HeaderValue {
        // PHP reads the plain name: no `__Host-` prefix. No Max-Age: a
        // browser-session cookie, as PHP's `session.cookie_lifetime = 0`.
        let mut cookie = Cookie::build((self.cookie_name.clone(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax);
        if clear {
            cookie = cookie.max_age(time::Duration::ZERO);
        }
        // The name is validated and ids are `[0-9a-v]`: a valid header.
        HeaderValue::from_str(&cookie.build().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` naming PHP session `id`.
    pub fn set_cookie(&self, id: &str) -> HeaderValue {
        self.cookie(id.to_owned(), false)
    }

    /// `Set-Cookie` deleting the PHP session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.cookie(String::new(), true)
    }
}

/// A PHP session's record is extended at most once per this fraction of
/// `gc_maxlifetime` (2.4 min of PHP's default 24): it then lasts at least
/// 90% of the lifetime after the bridge's last request.
const EXTEND_EVERY: i64 = 10;

/// The outcome for a store error: 503 when unreachable (or locked by PHP),
/// else no credential (unreadable data is not a login).
fn refused(err: &PhpError) -> Authn {
    if err.is_unavailable() || matches!(err, PhpError::Locked { .. } | PhpError::Conflict { .. }) {
        tracing::warn!(error = %err, "PHP session check failed: store unavailable");
        Authn::Rejected(AuthRejection::Unavailable)
    } else {
        tracing::warn!(error = %err, "unreadable PHP session ignored");
        Authn::Anonymous
    }
}

/// The token family of PHP session `id`: stable for the session, so every
/// token minted from it is killed together; a hash, because the id itself
/// is a secret and families appear in tokens.
fn family_of(id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
    let short = digest.as_ref().get(..16).unwrap_or_default();
    format!(
        "php-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(short)
    )
}

/// "Now" for a PHP login the bridge sees for the first time, in Unix
/// seconds. Epoch checks count a login in the epoch's second as before it,
/// so right after a "log out everywhere" this waits for the next second
/// (as a bridge login does).
async fn first_seen(epoch: Option<i64>) -> i64 {
    let now = unix_ms(OffsetDateTime::now_utc());
    if let Some(epoch) = epoch
        && epoch >= now - 1000
    {
        let wait = (epoch / 1000 + 1) * 1000 - now;
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(wait.clamp(0, 1000)).unwrap_or(0),
        ))
        .await;
    }
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The PHP app's sessions as one more place a credential can come from:
/// a login PHP recorded authenticates, and the bridge's logins and logouts
/// reach PHP.
#[async_trait::async_trait]
impl CredentialSource for LegacySessions {
    fn name(&self) -> &'static str {
        "legacy_php"
    }

    async fn authenticate(&self, headers: &HeaderMap, revocation: &dyn RevocationStore) -> Authn {
        LegacySessions::authenticate(self, headers, revocation).await
    }

    async fn on_login(
        &self,
        headers: &HeaderMap,
        user: &Principal,
        family: &str,
    ) -> Result<Vec<HeaderValue>, AuthRejection> {
        match self
            .start(headers, &BridgeIdentity::from(user), family)
            .await
        {
            Ok(id) => Ok(vec![self.set_cookie(&id)]),
            Err(err) => {
                tracing::warn!(error = %crate::error_chain(&err), "login failed: PHP session store unavailable");
                Err(AuthRejection::Unavailable)
            }
        }
    }

    async fn on_logout(
        &self,
        headers: &HeaderMap,
        scope: LogoutScope<'_>,
    ) -> Result<(), AuthRejection> {
        let ended = match scope {
            LogoutScope::Family { sub, family } => self.end_sessions_of(sub, Some(family)).await,
            LogoutScope::User { sub } => self.end_sessions_of(sub, None).await,
            _ => Ok(0),
        };
        match (self.end(headers).await, ended) {
            (Ok(_), Ok(n)) => {
                if n > 0 {
                    tracing::debug!(sessions = n, "logout: PHP sessions ended");
                }
                Ok(())
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %crate::error_chain(&err), "logout failed: could not delete the PHP sessions");
                Err(AuthRejection::Unavailable)
            }
        }
    }

    fn clear_cookies(&self) -> Vec<HeaderValue> {
        vec![self.clear_cookie()]
    }
}

impl From<&Principal> for BridgeIdentity {
    fn from(user: &Principal) -> Self {
        Self {
            sub: user.sub.clone(),
            username: user.username.clone(),
            groups: user.groups.clone(),
            auth_time: Some(user.auth_time.unix_timestamp()),
            iss: user.issuer.clone(),
        }
    }
}

impl Bridge {
    /// The legacy PHP app's sessions, when the bridge shares them.
    pub fn legacy(&self) -> Option<&LegacySessions> {
        self.source::<LegacySessions>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn families_are_stable_per_session_and_hide_the_id() {
        let id = new_session_id();
        assert_eq!(family_of(&id), family_of(&id));
        assert_ne!(family_of(&id), family_of(&new_session_id()));
        assert!(!family_of(&id).contains(&id));
        assert_eq!(family_of(&id).len(), 4 + 22);
    }

    #[test]
    fn the_cookie_is_phps_plain_name_lax_and_http_only() {
        struct NoStore;
        #[async_trait::async_trait]
        impl PhpSessionStore for NoStore {
            async fn load(&self, _: &str) -> Result<Option<PhpSession>, PhpError> {
                Ok(None)
            }
            async fn update(
                &self,
                _: &str,
                _: &mut session_bridge_php::Change<'_>,
            ) -> Result<PhpSession, PhpError> {
                Ok(PhpSession::new(Format::Php))
            }
            async fn delete(&self, _: &str) -> Result<bool, PhpError> {
                Ok(false)
            }
            async fn load_record(
                &self,
                _: &str,
            ) -> Result<Option<session_bridge_php::PhpRecord>, PhpError> {
                Ok(None)
            }
            async fn touch(&self, _: &str) -> Result<Option<i64>, PhpError> {
                Ok(None)
            }
            async fn remember(&self, _: &str, _: &IndexedSession) -> Result<(), PhpError> {
                Ok(())
            }
            async fn sessions_of(&self, _: &str) -> Result<Vec<IndexedSession>, PhpError> {
                Ok(Vec::new())
            }
            async fn forget(&self, _: &str, _: &[IndexedSession]) -> Result<(), PhpError> {
                Ok(())
            }
        }
        let php = LegacySessions::new(Arc::new(NoStore)).with_secure_cookie(true);
        // Extended at most once per tenth of the lifetime (1440 s: 144 s).
        let full = php.full_expiry();
        assert!(!php.extension_due(Some(full)));
        assert!(!php.extension_due(Some(full - 140)));
        assert!(php.extension_due(Some(full - 150)));
        assert!(php.extension_due(None));
        let set = php.set_cookie("abc");
        let set = set.to_str().unwrap();
        assert!(set.starts_with("PHPSESSID=abc"), "{set}");
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
            assert!(set.contains(attr), "{attr} in {set}");
        }
        assert!(!set.contains("Max-Age"), "{set}");
        let clear = php.clear_cookie();
        assert!(clear.to_str().unwrap().contains("Max-Age=0"));

        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("PHPSESSID=../etc"));
        assert_eq!(php.session_id(&headers), None);
        headers.insert("cookie", HeaderValue::from_static("PHPSESSID=abc,-9"));
        assert_eq!(php.session_id(&headers), Some("abc,-9"));
    }
}
