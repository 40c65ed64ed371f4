use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::StoreResult;

/// A user's epoch: Unix time in **milliseconds**. Credentials of that user
/// issued before it are dead ("log out everywhere").
pub type Epoch = i64;

/// Position in a store's change log: Unix time in milliseconds of the last
/// change a reader has seen. [`Cursor::START`] reads the whole retained log.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Cursor(pub i64);

impl Cursor {
    /// Before every change.
    pub const START: Self = Self(0);
}

/// One change to revocation state, as a replica replays it.
///
/// Replaying a change is idempotent (an epoch only ever moves to the maximum
/// of what it was and what the change says; killing an id twice is killing
/// it once), so readers may ask again with an overlap to cover clock skew
/// between writers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Change {
    /// A user's epoch was raised to `epoch`.
    Epoch {
        /// The user (`sub`).
        user: String,
        /// The epoch after the change.
        epoch: Epoch,
    },
    /// A token id (`jti` or `origin_jti`) was killed until `expires_at`.
    Killed {
        /// The killed id.
        id: String,
        /// When the entry may be forgotten (the latest expiry of any token
        /// carrying the id).
        #[serde(with = "time::serde::timestamp")]
        expires_at: OffsetDateTime,
    },
}

/// A page of the change log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Changes after the requested cursor, oldest first.
    pub changes: Vec<Change>,
    /// The cursor to ask from next time (the newest change's time, or the
    /// requested cursor when nothing changed).
    pub next: Cursor,
}

/// Revocation state: per-user epochs and a list of killed token ids.
///
/// # Contract (checked by the conformance suite)
///
/// - [`bump_epoch`](Self::bump_epoch) is atomic and monotonic: the stored
///   epoch becomes `max(stored, to)`, also under concurrent bumps from many
///   processes.
/// - A killed id stays killed until its `expires_at` and is never reported
///   killed after it, even if the backend deletes expired entries late.
/// - Every change is also appended to a change log that
///   [`changes_since`](Self::changes_since) reads, so a local replica can
///   follow the state without a round trip per request. The log keeps at least
///   the changes of the store's retention window (an adapter setting; at
///   least the longest token lifetime).
/// - An unreachable backend gives [`StoreError::Unavailable`](crate::StoreError::Unavailable)
///   within the adapter's timeout; it never hangs or panics, and the same
///   store value works again once the backend is back.
#[async_trait]
pub trait RevocationStore: Debug + Send + Sync + 'static {
    /// The user's current epoch, `None` when it was never bumped (or its
    /// entry expired).
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>>;

    /// Raise the user's epoch to at least `to`; returns the epoch now stored
    /// (which is larger than `to` when another writer got further).
    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch>;

    /// Kill a token id (`jti` or `origin_jti`) until `expires_at`.
    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()>;

    /// Whether the id is killed now.
    async fn is_killed(&self, id: &str) -> StoreResult<bool>;

    /// Changes made after `since`, oldest first, at most `limit` of them.
    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch>;

    /// Check that the backend answers (used by `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
}

/// Milliseconds since the Unix epoch for `t`.
pub(crate) fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
