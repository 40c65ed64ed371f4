//! phpredis records' expiry and the bridge's per-user index on Redis (the
//! layout is in [`crate::index`]). Every script touches one key, so all of
//! it works on Cluster.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use fred::interfaces::KeysInterface;
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions, Value as RedisValue};

use session_bridge_store::StoreError;

use super::{Lock, PhpRedisStore, RedisLocking, STORE};
use crate::index::{INDEX_MARKER, now};
use crate::{Error, IndexedSession, PhpRecord};

/// The record and its remaining life in ms (`-1`: none, `-2`: no record),
/// read together.
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")
});

/// phpredis's `updateTimestamp`: `EXPIRE key lifetime` (a no-op without a
/// record).
static EXPIRE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return redis.call('EXPIRE', KEYS[1], ARGV[1])"));

/// Add member `ARGV[1]` with score `ARGV[2]` (only ever raising a score),
/// then let the index expire with its highest score.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r"
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], top[2])
return 1
",
    )
});

/// A lapsed entry checked against its record: raise its score to
/// `ARGV[2]`, or remove it when `ARGV[2]` is empty (the record is gone).
static RESCORE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r"
if ARGV[2] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
",
    )
});

/// Entries with their scores; `ARGV[1]` the highest score wanted (`+inf`
/// for all).
static RANGE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua("return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')")
});

/// Remove members `ARGV` (Redis deletes an empty set).
static REMOVE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return redis.call('ZREM', KEYS[1], unpack(ARGV))"));

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn text(v: &RedisValue) -> Option<String> {
    match v {
        RedisValue::String(s) => Some(s.to_string()),
        RedisValue::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        RedisValue::Integer(n) => Some(n.to_string()),
        RedisValue::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// Expiry in Unix seconds from `PTTL`'s answer (`None`: no expiry).
fn expiry_of(pttl: i64) -> Option<i64> {
    (pttl >= 0).then(|| (now_ms().saturating_add(pttl)) / 1000)
}

impl PhpRedisStore {
    /// The index key of `sub`.
    pub(super) fn index_key(&self, sub: &str) -> String {
        format!("{}{INDEX_MARKER}{sub}", self.prefix)
    }

    pub(super) async fn load_record_at(&self, key: &str) -> Result<Option<PhpRecord>, Error> {
        let reply: RedisValue = self
            .call(LOAD.evalsha_with_reload(self.pool.next(), key, ()))
            .await?;
        let mut parts = reply.into_array().into_iter();
        let (data, pttl) = (parts.next(), parts.next().and_then(|v| v.as_i64()));
        let Some(data) = data.filter(|d| !d.is_null()) else {
            return Ok(None);
        };
        let bytes = data.as_bytes().ok_or_else(|| {
            Error::Store(StoreError::Decode {
                store: STORE,
                source: "a session record that is not a string".into(),
            })
        })?;
        let session = self.decode(bytes)?;
        Ok(Some(PhpRecord {
            session,
            expires_at: pttl.and_then(expiry_of),
        }))
    }

    /// Take phpredis's lock if it is free right now (one attempt).
    async fn try_lock(&self, key: &str, locking: &RedisLocking) -> Result<Option<Lock>, Error> {
        let lock = Lock {
            key: format!("{key}_LOCK"),
            secret: format!("session-bridge|{:016x}", rand::random::<u64>()),
        };
        let px = i64::try_from(locking.expire.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let set: Option<String> = self
            .call(self.pool.set(
                lock.key.as_str(),
                lock.secret.as_str(),
                Some(Expiration::PX(px)),
                Some(SetOptions::NX),
                false,
            ))
            .await?;
        Ok(set.map(|_| lock))
    }

    pub(super) async fn touch_at(&self, key: &str) -> Result<Option<i64>, Error> {
        let lock = match &self.locking {
            Some(locking) => match self.try_lock(key, locking).await? {
                Some(lock) => Some(lock),
                // PHP is inside a request: it extends the record itself.
                None => return Ok(None),
            },
            None => None,
        };
        let lifetime = i64::try_from(self.gc_maxlifetime.as_secs().max(1)).unwrap_or(i64::MAX);
        let result: Result<i64, Error> = self
            .call(EXPIRE.evalsha_with_reload(self.pool.next(), key, lifetime.to_string()))
            .await;
        if let Some(lock) = lock {
            self.unlock(lock).await;
        }
        Ok((result? == 1).then(|| now().saturating_add(lifetime)))
    }

    async fn entries(&self, index: &str, up_to: &str) -> Result<Vec<IndexedSession>, Error> {
        let reply: RedisValue = self
            .call(RANGE.evalsha_with_reload(self.pool.next(), index, up_to))
            .await?;
        let items = reply.into_array();
        Ok(items
            .chunks(2)
            .filter_map(|pair| {
                let member = text(pair.first()?)?;
                let score = text(pair.get(1)?)?.parse::<f64>().ok()?;
                // Scores are whole seconds well inside i64.
                #[allow(clippy::cast_possible_truncation)]
                IndexedSession::from_member(&member, score as i64)
            })
            .collect())
    }

    pub(super) async fn remember_at(&self, sub: &str, entry: &IndexedSession) -> Result<(), Error> {
        let index = self.index_key(sub);
        // Entries past their expiry: PHP may have kept their records alive.
        for lapsed in self.entries(&index, &now().to_string()).await? {
            let pttl: i64 = self.call(self.pool.pttl(self.key(&lapsed.id))).await?;
            let score = match pttl {
                -2 => String::new(),
                -1 => now()
                    .saturating_add(i64::try_from(self.gc_maxlifetime.as_secs()).unwrap_or(0))
                    .to_string(),
                ms => expiry_of(ms).unwrap_or_default().to_string(),
            };
            let _: RedisValue = self
                .call(RESCORE.evalsha_with_reload(
                    self.pool.next(),
                    index.as_str(),
                    vec![lapsed.member(), score],
                ))
                .await?;
        }
        let _: RedisValue = self
            .call(ADD.evalsha_with_reload(
                self.pool.next(),
                index.as_str(),
                vec![entry.member(), entry.expires_at.to_string()],
            ))
            .await?;
        Ok(())
    }

    pub(super) async fn sessions_of_at(&self, sub: &str) -> Result<Vec<IndexedSession>, Error> {
        self.entries(&self.index_key(sub), "+inf").await
    }

    pub(super) async fn forget_at(
        &self,
        sub: &str,
        entries: &[IndexedSession],
    ) -> Result<(), Error> {
        for chunk in entries.chunks(256) {
            let members: Vec<String> = chunk.iter().map(IndexedSession::member).collect();
            let _: RedisValue = self
                .call(REMOVE.evalsha_with_reload(
                    self.pool.next(),
                    self.index_key(sub).as_str(),
                    members,
                ))
                .await?;
        }
        Ok(())
    }
}
