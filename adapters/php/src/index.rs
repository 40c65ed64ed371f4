//! The bridge's per-user index of PHP sessions, and the expiry of a
//! record.
//!
//! PHP pages read `$_SESSION` and nothing else, so "log out everywhere"
//! must delete the records themselves: the bridge keeps, next to the
//! records and in the same store, the ids of the PHP sessions it created
//! or accepted for each user, with the token family each belongs to.
//!
//! | store | index of user `sub` |
//! | --- | --- |
//! | phpredis | sorted set `<prefix>session-bridge:user:<sub>`: member `<id> <family>`, score = the record's expiry (Unix seconds); the key expires at its highest score |
//! | aws-sdk-php | item `<session name>_session-bridge:user:<sub>`: `sessions` (M: id → M `{family: S, expires: N}`), `expires` (N, the highest entry expiry, so aws-sdk-php's garbage collection or a TTL on `expires` removes it), `version` (N, for conditional writes) |
//!
//! Neither key can be a session's: PHP session ids have no `:`.
//!
//! An entry's expiry is the record's expiry when the bridge last wrote or
//! saw it. PHP pages extend records on their own, so an entry past its
//! expiry is checked against its record before it is dropped (and kept,
//! with the record's expiry, while the record lives). The index itself
//! expires with its latest entry: a PHP session that only PHP pages kept
//! alive for a whole `gc_maxlifetime` after the bridge last saw any of the
//! user's sessions is no longer listed.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::PhpSession;

/// Prefix, after the store's own prefix, of index keys.
pub(crate) const INDEX_MARKER: &str = "session-bridge:user:";

/// A session record as PHP would read it, with when it expires.
#[derive(Debug, Clone)]
pub struct PhpRecord {
    /// `$_SESSION`.
    pub session: PhpSession,
    /// When the store drops the record unless it is written or touched
    /// again (Unix seconds); `None` when it has no expiry.
    pub expires_at: Option<i64>,
}

/// One PHP session in a user's index.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexedSession {
    /// The PHP session id: a bearer secret, kept out of `Debug`.
    pub id: String,
    /// The token family the session belongs to (non-secret).
    pub family: String,
    /// The record's expiry when the bridge last wrote or saw it (Unix
    /// seconds); PHP may have extended the record since.
    pub expires_at: i64,
}

impl fmt::Debug for IndexedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexedSession")
            .field("id", &"[redacted]")
            .field("family", &self.family)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IndexedSession {
    /// The phpredis sorted-set member: `<id> <family>` (ids have no space).
    pub(crate) fn member(&self) -> String {
        format!("{} {}", self.id, self.family)
    }

    /// Parse a member written by [`member`](Self::member).
    pub(crate) fn from_member(member: &str, expires_at: i64) -> Option<Self> {
        let (id, family) = member.split_once(' ')?;
        crate::validate_session_id(id).ok()?;
        Some(Self {
            id: id.to_owned(),
            family: family.to_owned(),
            expires_at,
        })
    }
}

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_and_ids_stay_out_of_debug() {
        let e = IndexedSession {
            id: "abc123".into(),
            family: "php-xyz".into(),
            expires_at: 7,
        };
        assert_eq!(IndexedSession::from_member(&e.member(), 7), Some(e.clone()));
        assert!(!format!("{e:?}").contains("abc123"));
        assert_eq!(IndexedSession::from_member("no-family", 1), None);
        assert_eq!(IndexedSession::from_member("bad:id fam", 1), None);
    }
}
