//! Redis store for session-bridge: sessions and revocation state on Redis
//! standalone, Sentinel or Cluster, with or without TLS.
//!
//! [`RedisStore`] implements both store traits of [`session_bridge_store`]:
//!
//! - **sessions** go through [`tower_sessions_redis_store`]: key = the bare
//!   session id, value = the MessagePack record, `SET … EXAT expiry`; create
//!   uses `NX` (a taken id is never overwritten: a new id is drawn), save uses
//!   `XX` (a session deleted meanwhile is not brought back). This adapter adds
//!   a timeout to every call and checks the expiry on read.
//! - **revocation state** lives under a key prefix (default `sb:`), every key
//!   inside one hash tag so a Cluster keeps them in one slot:
//!
//!   | key | value |
//!   | --- | --- |
//!   | `{sb:}epoch:<user>` | the user's epoch (ms), no expiry |
//!   | `{sb:}killed:<id>` | Unix seconds until which `<id>` is killed, `EXAT` that time |
//!   | `{sb:}changes` | stream: the change log (`k`=`epoch`\|`killed`, `s`=user or id, `v`=value), trimmed to the retention window |
//!
//!   A bump or a kill is one Lua script that changes the key, appends to the
//!   stream and publishes on the channel `{sb:}changes` (pub/sub, for
//!   instant propagation) the text `<entry-id> epoch <ms> <user>` or
//!   `<entry-id> killed <unix-seconds> <id>`. A replica reads the stream with
//!   [`RevocationStore::changes_since`](session_bridge_store::RevocationStore::changes_since)
//!   at start and whenever a message (or a reconnect) tells it something
//!   changed; the cursor is the stream's time, so one clock (the server's)
//!   orders every writer.
//!
//! # Choice: one slot for revocation state
//!
//! Putting every revocation key in one slot makes "change + log + publish"
//! atomic (a replica never misses a change that took effect) at the price of
//! sending all revocation traffic to one shard. That traffic is small: writes
//! happen at logout, and reads go to the local replica once it exists.
//! Sessions are spread over all shards (bare ids, no hash tag).
//!
//! # Building the client
//!
//! The adapter takes an already-built [`fred`] pool. Build it with
//! [`recommended_builder`]: it bounds connection and command time and makes
//! the client reconnect on its own, forever, with backoff. With it, a call
//! against a down Redis fails with
//! [`StoreError::Unavailable`](session_bridge_store::StoreError::Unavailable)
//! after about the timeout, and the same client works again once Redis is
//! back. The store adds its own timeout around every call as well, so a
//! client built without these settings can fail slowly but never hangs.
//!
//! URLs (fred's syntax): `redis://host:6379`, `rediss://host:6379` (TLS, with
//! rustls and the platform's root certificates),
//! `redis-cluster://host:7000?node=host:7001&node=host:7002`,
//! `redis-sentinel://host:26379?sentinelServiceName=mymaster`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use session_bridge_redis::{RedisStore, fred::prelude::*, recommended_builder};
//!
//! let config = Config::from_url("redis://127.0.0.1:6379")?;
//! let pool = recommended_builder(config, Duration::from_secs(2)).build_pool(4)?;
//! pool.init().await?; // or `pool.connect()` to start without waiting for Redis
//! let store = RedisStore::new(pool)
//!     .with_key_prefix("myapp:")
//!     .with_timeout(Duration::from_secs(2));
//! # let _ = store;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod revocation;
mod sessions;

use std::fmt;
use std::time::Duration;

use fred::clients::Pool;
use fred::types::Builder;
use fred::types::config::{Config, ReconnectPolicy, TcpConfig, UnresponsiveConfig};

pub use fred;
pub use tower_sessions_redis_store;

/// Default prefix of revocation keys.
pub const DEFAULT_KEY_PREFIX: &str = "sb:";

/// Default bound on one store call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions and revocation state on Redis. See the [crate docs](crate).
///
/// Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    sessions: tower_sessions_redis_store::RedisStore<Pool>,
    keys: Keys,
    scripts: revocation::Scripts,
    timeout: Duration,
    log_retention: time::Duration,
}

impl fmt::Debug for RedisStore {
    // The client's config may hold a password: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix)
            .field("timeout", &self.timeout)
            .field("log_retention", &self.log_retention)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `pool`, with the default key prefix (`sb:`), timeout (2 s)
    /// and change-log retention (one day).
    ///
    /// Build the pool with [`recommended_builder`]; it need not be connected
    /// yet.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), session_bridge_redis::fred::error::Error> {
    /// use std::time::Duration;
    /// use session_bridge_redis::{RedisStore, fred::prelude::*, recommended_builder};
    ///
    /// let config = Config::from_url("redis-sentinel://127.0.0.1:26379?sentinelServiceName=mymaster")?;
    /// let pool = recommended_builder(config, Duration::from_secs(2)).build_pool(4)?;
    /// let _connection_tasks = pool.connect();
    /// let store = RedisStore::new(pool);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub fn new(pool: Pool) -> Self {
        Self {
            sessions: tower_sessions_redis_store::RedisStore::new(pool.clone()),
            pool,
            keys: Keys {
                prefix: DEFAULT_KEY_PREFIX.to_owned(),
            },
            scripts: revocation::Scripts::default(),
            timeout: DEFAULT_TIMEOUT,
            log_retention: session_bridge_store::DEFAULT_LOG_RETENTION,
        }
    }

    /// Prefix revocation keys with `prefix` (session keys are bare ids, as
    /// tower-sessions-redis-store writes them).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys.prefix = prefix.into();
        self
    }

    /// Fail a call that takes longer than `timeout` with
    /// [`StoreError::Unavailable`](session_bridge_store::StoreError::Unavailable).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keep change-log entries for `retention` (at least the longest token
    /// lifetime; default one day).
    #[must_use]
    pub fn with_log_retention(mut self, retention: time::Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// The client pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pub/sub channel on which every revocation change is announced
    /// (and the key of the change-log stream).
    pub fn changes_channel(&self) -> String {
        self.keys.log()
    }
}

/// Key names of revocation state. Every key starts with the same hash tag, so
/// lands in the same Cluster slot, whatever the prefix holds.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    /// `{prefix}`, or `{sb}prefix` when `{prefix}` would be an empty hash
    /// tag (Redis then hashes the whole key).
    fn start(&self) -> String {
        if self.prefix.is_empty() || self.prefix.starts_with('}') {
            format!("{{sb}}{}", self.prefix)
        } else {
            format!("{{{}}}", self.prefix)
        }
    }

    fn epoch(&self, user: &str) -> String {
        format!("{}epoch:{user}", self.start())
    }

    fn killed(&self, id: &str) -> String {
        format!("{}killed:{id}", self.start())
    }

    fn log(&self) -> String {
        format!("{}changes", self.start())
    }
}

/// A fred builder for `config` with the settings this store relies on.
///
/// - connecting (TCP, TLS, `AUTH`, `CLUSTER SLOTS`, Sentinel) and each
///   command are bounded by `timeout`;
/// - a connection that stops answering is closed after `2 × timeout`;
/// - the client reconnects forever, backing off from 100 ms to 2 s, so the
///   same client works again after an outage or a failover;
/// - a command is tried at most twice when its connection drops under it.
///
/// ```no_run
/// # fn demo() -> Result<(), session_bridge_redis::fred::error::Error> {
/// use std::time::Duration;
/// use session_bridge_redis::{fred::prelude::*, recommended_builder};
///
/// let config = Config::from_url("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001")?;
/// let pool = recommended_builder(config, Duration::from_secs(2)).build_pool(4)?;
/// # let _ = pool;
/// # Ok(()) }
/// ```
pub fn recommended_builder(config: Config, timeout: Duration) -> Builder {
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
            c.max_command_attempts = 2;
            c.unresponsive = UnresponsiveConfig {
                max_timeout: Some(timeout * 2),
                interval: (timeout / 2).max(Duration::from_millis(100)),
            };
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            };
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_keys_share_one_slot() {
        for prefix in ["sb:", "", "we{ir}d:", "}{"] {
            let keys = Keys {
                prefix: prefix.to_owned(),
            };
            let slot = fred::util::redis_keyslot(keys.log().as_bytes());
            for key in [
                keys.epoch("alice"),
                keys.epoch("{bob}"),
                keys.killed("jti-1"),
                keys.killed("}{"),
            ] {
                assert_eq!(fred::util::redis_keyslot(key.as_bytes()), slot, "{key}");
            }
        }
    }
}
