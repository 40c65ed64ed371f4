//! Session records of phpredis's session handler (`session.save_handler =
//! redis`).
//!
//! | what | phpredis |
//! | --- | --- |
//! | record | `GET` / `SETEX <prefix><id> <gc_maxlifetime> <data>`, prefix `PHPREDIS_SESSION:` unless `session.save_path` says `?prefix=...` |
//! | lock (`redis.session.locking_enabled=1`) | `SET <prefix><id>_LOCK <secret> NX [PX <lock_expire × 1000>]`, retried `redis.session.lock_retries` times every `redis.session.lock_wait_time` µs; a request that did not get the lock reads but never writes |
//! | unlock | `if GET lock == secret then DEL lock` (Lua) |
//!
//! (Checked against phpredis 5.3.7 with PHP 8.2: Debian 12's `php-redis`.)

mod index;

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::clients::Pool;
use fred::error::{Error as RedisError, ErrorKind};
use fred::interfaces::KeysInterface;
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions, Value as RedisValue};
use session_bridge_store::StoreError;

use crate::store::{Change, PhpSessionStore, backoff, validate_session_id};
use crate::{EncodeProblem, Error, Format, IndexedSession, Limits, PhpRecord, PhpSession};

const STORE: &str = "phpredis";

/// phpredis's default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "PHPREDIS_SESSION:";
/// PHP's default `session.gc_maxlifetime`.
pub const DEFAULT_GC_MAXLIFETIME: Duration = Duration::from_secs(1440);

/// Write `ARGV[3]` with `EX ARGV[4]` only if the record is still what was
/// read: absent when `ARGV[1]` is `0`, exactly `ARGV[2]` when it is `1`.
const COMPARE_AND_SET: &str = r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
";

/// phpredis's unlock: delete the lock only if it is still ours.
const UNLOCK: &str = r#"if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end"#;

/// Taking phpredis's session lock before writing, for PHP apps that run
/// with `redis.session.locking_enabled = 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisLocking {
    /// Expiry of the lock the adapter takes (phpredis uses
    /// `redis.session.lock_expire`, else `max_execution_time`). It is held
    /// for one read and one write.
    pub expire: Duration,
    /// How long to wait for PHP to release the lock before failing with
    /// [`Error::Locked`].
    pub max_wait: Duration,
    /// First pause between attempts (doubles, up to 100 ms).
    pub retry_interval: Duration,
}

impl Default for RedisLocking {
    fn default() -> Self {
        Self {
            expire: Duration::from_secs(10),
            max_wait: Duration::from_secs(5),
            retry_interval: Duration::from_millis(5),
        }
    }
}

/// phpredis session records on Redis.
///
/// # Concurrency
///
/// [`update`](PhpSessionStore::update) is a read-modify-write guarded by a
/// compare-and-set: the new record is written (Lua, one key, so Cluster-safe)
/// only if the record still holds the bytes that were read; otherwise it is
/// read and changed again (up to [`with_max_attempts`](Self::with_max_attempts)
/// times). A PHP write that lands between the adapter's read and write is
/// therefore never overwritten. PHP itself writes blindly at the end of a
/// request, so without PHP's locking a request that started before the
/// adapter's write and changes the session afterwards overwrites it — as it
/// would overwrite another PHP request's change. With
/// [`with_locking`](Self::with_locking) the adapter also takes phpredis's
/// lock (waiting for a PHP request holding it to finish), which closes that
/// gap for apps that enable `redis.session.locking_enabled`.
#[derive(Clone)]
pub struct PhpRedisStore {
    pool: Pool,
    prefix: String,
    gc_maxlifetime: Duration,
    format: Format,
    limits: Limits,
    locking: Option<RedisLocking>,
    timeout: Duration,
    max_attempts: u32,
    compare_and_set: Script,
    unlock: Script,
}

impl fmt::Debug for PhpRedisStore {
    // The client's config may hold a password: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhpRedisStore")
            .field("prefix", &self.prefix)
            .field("gc_maxlifetime", &self.gc_maxlifetime)
            .field("format", &self.format)
            .field("limits", &self.limits)
            .field("locking", &self.locking)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl PhpRedisStore {
    /// phpredis records on `pool` with PHP's defaults: prefix
    /// `PHPREDIS_SESSION:`, format `php`, `gc_maxlifetime` 1440 s, no
    /// locking; 2 s per Redis call.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use session_bridge_php::fred::prelude::*;
    /// use session_bridge_php::{Format, PhpRedisStore, PhpSessionStore, RedisLocking};
    ///
    /// let pool = Builder::from_config(Config::from_url("redis://127.0.0.1:6379")?).build_pool(2)?;
    /// pool.init().await?;
    /// let store = PhpRedisStore::new(pool)
    ///     .with_prefix("myapp:")                       // session.save_path "...?prefix=myapp:"
    ///     .with_format(Format::PhpSerialize)           // session.serialize_handler
    ///     .with_gc_maxlifetime(Duration::from_secs(3600))
    ///     .with_locking(RedisLocking::default());      // redis.session.locking_enabled=1
    /// let session = store.load("a8f5f167f44f4964e6c998dee827110c").await?;
    /// # let _ = session;
    /// # Ok(()) }
    /// ```
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            gc_maxlifetime: DEFAULT_GC_MAXLIFETIME,
            format: Format::Php,
            limits: Limits::default(),
            locking: None,
            timeout: Duration::from_secs(2),
            max_attempts: 5,
            compare_and_set: Script::from_lua(COMPARE_AND_SET),
            unlock: Script::from_lua(UNLOCK),
        }
    }

    /// Key prefix (phpredis's `prefix=` in `session.save_path`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Record lifetime set on every write (`session.gc_maxlifetime`).
    #[must_use]
    pub fn with_gc_maxlifetime(mut self, lifetime: Duration) -> Self {
        self.gc_maxlifetime = lifetime;
        self
    }

    /// The app's `session.serialize_handler`.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Bounds on the records decoded (and written).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Take phpredis's session lock before writing or deleting.
    #[must_use]
    pub fn with_locking(mut self, locking: RedisLocking) -> Self {
        self.locking = Some(locking);
        self
    }

    /// Bound on each Redis call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Read-modify-write attempts before [`Error::Conflict`] (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The Redis key of session `id`.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    async fn call<T>(&self, call: impl Future<Output = Result<T, RedisError>>) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| Error::Store(redis_error(e))),
            Err(elapsed) => Err(Error::Store(StoreError::Unavailable {
                store: STORE,
                source: Box::new(elapsed),
            })),
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<PhpSession, Error> {
        PhpSession::decode(self.format, bytes, &self.limits)
    }

    /// Take the lock of `key`, waiting for PHP up to the configured time.
    async fn lock(&self, key: &str, locking: &RedisLocking) -> Result<Lock, Error> {
        let lock = Lock {
            key: format!("{key}_LOCK"),
            secret: format!("session-bridge|{:016x}", rand::random::<u64>()),
        };
        let px = i64::try_from(locking.expire.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let set: Option<String> = self
                .call(self.pool.set(
                    lock.key.as_str(),
                    lock.secret.as_str(),
                    Some(Expiration::PX(px)),
                    Some(SetOptions::NX),
                    false,
                ))
                .await?;
            if set.is_some() {
                return Ok(lock);
            }
            let waited = started.elapsed();
            if waited >= locking.max_wait {
                return Err(Error::Locked { waited });
            }
            let pause = backoff(attempt, locking.retry_interval, Duration::from_millis(100))
                .min(locking.max_wait - waited);
            tokio::time::sleep(pause).await;
            attempt = attempt.saturating_add(1);
        }
    }

    async fn unlock(&self, lock: Lock) {
        let released: Result<i64, Error> = self
            .call(self.unlock.evalsha_with_reload(
                self.pool.next(),
                lock.key.as_str(),
                lock.secret.as_str(),
            ))
            .await;
        if let Err(err) = released {
            // It expires on its own; PHP waits at most that long.
            tracing::warn!(error = %err, "could not release a phpredis session lock");
        }
    }

    async fn read_modify_write(
        &self,
        key: &str,
        change: &mut Change<'_>,
    ) -> Result<PhpSession, Error> {
        let ttl = self.gc_maxlifetime.as_secs().max(1).to_string();
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(
                    attempt,
                    Duration::from_millis(2),
                    Duration::from_millis(50),
                ))
                .await;
            }
            let current: Option<Vec<u8>> = self.call(self.pool.get(key)).await?;
            let mut session = match &current {
                Some(bytes) => self.decode(bytes)?,
                None => PhpSession::new(self.format),
            };
            change(&mut session)?;
            let data = session.encode()?;
            if data.len() > self.limits.max_input {
                return Err(Error::Encode(EncodeProblem::TooLarge));
            }
            let unchanged = match &current {
                Some(bytes) => *bytes == data,
                None => session.is_empty(),
            };
            if unchanged {
                return Ok(session);
            }
            let (exists, old) = match current {
                Some(bytes) => ("1", bytes),
                None => ("0", Vec::new()),
            };
            let args: Vec<RedisValue> = vec![
                exists.into(),
                RedisValue::Bytes(old.into()),
                RedisValue::Bytes(data.into()),
                ttl.as_str().into(),
            ];
            let written: i64 = self
                .call(
                    self.compare_and_set
                        .evalsha_with_reload(self.pool.next(), key, args),
                )
                .await?;
            if written == 1 {
                return Ok(session);
            }
        }
        Err(Error::Conflict {
            attempts: self.max_attempts,
        })
    }
}

struct Lock {
    key: String,
    secret: String,
}

#[async_trait]
impl PhpSessionStore for PhpRedisStore {
    async fn load(&self, id: &str) -> Result<Option<PhpSession>, Error> {
        validate_session_id(id)?;
        let bytes: Option<Vec<u8>> = self.call(self.pool.get(self.key(id))).await?;
        bytes.map(|b| self.decode(&b)).transpose()
    }

    async fn load_record(&self, id: &str) -> Result<Option<PhpRecord>, Error> {
        validate_session_id(id)?;
        self.load_record_at(&self.key(id)).await
    }

    async fn touch(&self, id: &str) -> Result<Option<i64>, Error> {
        validate_session_id(id)?;
        self.touch_at(&self.key(id)).await
    }

    async fn remember(&self, sub: &str, entry: &IndexedSession) -> Result<(), Error> {
        validate_session_id(&entry.id)?;
        self.remember_at(sub, entry).await
    }

    async fn sessions_of(&self, sub: &str) -> Result<Vec<IndexedSession>, Error> {
        self.sessions_of_at(sub).await
    }

    async fn forget(&self, sub: &str, entries: &[IndexedSession]) -> Result<(), Error> {
        self.forget_at(sub, entries).await
    }

    async fn update(&self, id: &str, change: &mut Change<'_>) -> Result<PhpSession, Error> {
        validate_session_id(id)?;
        let key = self.key(id);
        let lock = match &self.locking {
            Some(locking) => Some(self.lock(&key, locking).await?),
            None => None,
        };
        let result = self.read_modify_write(&key, change).await;
        if let Some(lock) = lock {
            self.unlock(lock).await;
        }
        result
    }

    async fn delete(&self, id: &str) -> Result<bool, Error> {
        validate_session_id(id)?;
        let key = self.key(id);
        // With locking, wait for a PHP request holding the session: it
        // would write the session back after the delete.
        let lock = match &self.locking {
            Some(locking) => Some(self.lock(&key, locking).await?),
            None => None,
        };
        let result: Result<i64, Error> = self.call(self.pool.del(key.as_str())).await;
        if let Some(lock) = lock {
            self.unlock(lock).await;
        }
        Ok(result? > 0)
    }
}

/// Error replies that mean "not now" (loading, failover, resharding).
const TRANSIENT_REPLIES: &[&str] = &[
    "LOADING",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "BUSY ",
    "NOREPLICAS",
];

fn redis_error(err: RedisError) -> StoreError {
    let unavailable = match err.kind() {
        ErrorKind::IO
        | ErrorKind::Timeout
        | ErrorKind::Canceled
        | ErrorKind::Backpressure
        | ErrorKind::Tls
        | ErrorKind::Sentinel => true,
        _ => TRANSIENT_REPLIES
            .iter()
            .any(|reply| err.details().starts_with(reply)),
    };
    if unavailable {
        StoreError::Unavailable {
            store: STORE,
            source: Box::new(err),
        }
    } else {
        StoreError::Backend {
            store: STORE,
            source: Box::new(err),
        }
    }
}
