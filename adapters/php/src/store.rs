//! What both stores of PHP's session records offer.

use std::time::Duration;

use async_trait::async_trait;

use crate::{BridgeIdentity, Error, IndexedSession, PhpRecord, PhpSession};

/// A change to a session, applied inside a read-modify-write. It may run
/// more than once (once per attempt), each time on a freshly read session.
pub type Change<'a> = dyn FnMut(&mut PhpSession) -> Result<(), Error> + Send + 'a;

/// The PHP app's own session records, in the store its session handler
/// uses.
///
/// Implemented by [`PhpRedisStore`](crate::PhpRedisStore) (phpredis) and
/// [`PhpDynamoDbStore`](crate::PhpDynamoDbStore) (aws-sdk-php).
#[async_trait]
pub trait PhpSessionStore: Send + Sync {
    /// The session `id` as PHP would read it; `None` when PHP would start
    /// an empty one (no record, or an expired one).
    async fn load(&self, id: &str) -> Result<Option<PhpSession>, Error>;

    /// Apply `change` to session `id` (an empty session if there is none)
    /// and write the result back, without losing a concurrent PHP write:
    /// see each store for how. Nothing is written when the bytes did not
    /// change. Returns the session as written.
    async fn update(&self, id: &str, change: &mut Change<'_>) -> Result<PhpSession, Error>;

    /// Delete session `id`, ending it for PHP; whether there was a record.
    async fn delete(&self, id: &str) -> Result<bool, Error>;

    /// Like [`load`](Self::load), with the record's expiry.
    async fn load_record(&self, id: &str) -> Result<Option<PhpRecord>, Error>;

    /// Push the expiry of session `id` to a full lifetime from now, as PHP
    /// does at the end of a request that did not change the session
    /// (phpredis `EXPIRE`, aws-sdk-php's write of `expires`). With locking,
    /// only when PHP's lock is free: a PHP request holding it extends the
    /// record itself when it ends. Returns the new expiry (Unix seconds), or
    /// `None` when nothing was extended (no live record, or PHP held the
    /// lock). Never brings an expired record back.
    async fn touch(&self, id: &str) -> Result<Option<i64>, Error>;

    /// Add `entry` to `sub`'s index (or raise its expiry), and drop the
    /// user's entries whose record is gone. See [`crate::index`] for the
    /// layout.
    async fn remember(&self, sub: &str, entry: &IndexedSession) -> Result<(), Error>;

    /// Every entry of `sub`'s index, lapsed ones included (PHP may have
    /// kept their records alive).
    async fn sessions_of(&self, sub: &str) -> Result<Vec<IndexedSession>, Error>;

    /// Remove `entries` from `sub`'s index (the index goes when empty).
    async fn forget(&self, sub: &str, entries: &[IndexedSession]) -> Result<(), Error>;

    /// Delete the records of `sub`'s indexed sessions (only those of token
    /// `family` when given), each as [`delete`](Self::delete) does, then
    /// their entries. Returns how many records there were. On an error the
    /// entries not yet handled stay, so a retry finishes the job.
    async fn end_sessions_of(&self, sub: &str, family: Option<&str>) -> Result<usize, Error> {
        let entries: Vec<IndexedSession> = self
            .sessions_of(sub)
            .await?
            .into_iter()
            .filter(|e| family.is_none_or(|f| e.family == f))
            .collect();
        let mut ended = 0;
        let mut done = Vec::with_capacity(entries.len());
        let mut failure = None;
        for entry in entries {
            match self.delete(&entry.id).await {
                Ok(existed) => {
                    ended += usize::from(existed);
                    done.push(entry);
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if !done.is_empty() {
            self.forget(sub, &done).await?;
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(ended),
        }
    }

    /// Write the bridge's `identity` under `key`, keeping everything else.
    async fn write_identity(
        &self,
        id: &str,
        key: &str,
        identity: &BridgeIdentity,
    ) -> Result<PhpSession, Error> {
        self.update(id, &mut |s: &mut PhpSession| {
            s.set_bridge_identity(key, identity);
            Ok(())
        })
        .await
    }
}

/// Longest session id PHP accepts.
const MAX_ID_LEN: usize = 256;

/// Error unless `id` is a session id PHP accepts: 1 to 256 characters out
/// of `a-z A-Z 0-9 , -`. Ids come from cookies: this keeps them from
/// reaching a store key with anything else in them.
pub fn validate_session_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b',' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSessionId)
    }
}

/// A new random session id in PHP's default alphabet (`0-9a-v`, 5 bits a
/// character), 32 characters (160 bits) long.
pub fn new_session_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// How long to sleep before attempt `attempt` (1-based) of something that
/// lost a race: doubling from `base`, capped at `cap`, with jitter.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1 << attempt.min(10)).min(cap);
    let ms = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_php_accepts() {
        for id in ["a", "abcDEF019,-", &"x".repeat(256), &new_session_id()] {
            assert!(validate_session_id(id).is_ok(), "{id}");
        }
        for id in ["", "a b", "a:b", "a\n", "é", &"x".repeat(257), "../x"] {
            assert!(validate_session_id(id).is_err(), "{id}");
        }
        assert_ne!(new_session_id(), new_session_id());
    }
}
