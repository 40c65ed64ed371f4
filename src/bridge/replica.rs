//! A local replica of the revocation state, so that checking a token costs
//! no store round trip.
//!
//! The replica follows the store's change log ([`RevocationStore::changes_since`])
//! every `poll_interval`, re-reading a short overlap each time (replaying a
//! change is idempotent, and writers' clocks differ a little). Changes made
//! by this instance are applied at once; changes made by other instances
//! arrive within one poll.
//!
//! It answers only while it is fresh: when the last successful sync is older
//! than `max_staleness` (the store is down, the log unreadable), callers fall
//! back to asking the store, which fails closed when the store is down too.
//!
//! It serves token checks only. Tokens live at most a day, and the change
//! log keeps at least that much, so a replica started cold sees every change
//! that can still matter to a token. Sessions may live longer than the log
//! and keep asking the store, which they read anyway.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use session_bridge_store::{Change, Cursor, Epoch, RevocationStore, StoreError};
use time::OffsetDateTime;

use crate::problems::Problems;

/// `[revocation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReplicaConfig {
    /// Keep a local replica for token checks (default off: every token check
    /// asks the store, so a logout elsewhere takes effect at once).
    pub replica: bool,
    /// How often the replica reads the store's change log (default 1 s): the
    /// longest a logout on another instance takes to reach this one.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Past this without a successful sync, the replica stops answering and
    /// token checks ask the store again (default 5 s).
    #[serde(with = "humantime_serde")]
    pub max_staleness: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            replica: false,
            poll_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(5),
        }
    }
}

impl ReplicaConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if !(Duration::from_millis(50)..=Duration::from_secs(60)).contains(&self.poll_interval) {
            problems.push(
                format!("{key}.poll_interval"),
                "must be between 50ms and 60s",
            );
        }
        if self.max_staleness < self.poll_interval * 2
            || self.max_staleness > Duration::from_secs(600)
        {
            problems.push(
                format!("{key}.max_staleness"),
                "must be at least twice poll_interval and at most 10 minutes",
            );
        }
    }
}

/// How far back each sync re-reads, for writers whose clocks run behind.
const OVERLAP_MS: i64 = 2_000;
/// Changes read per page.
const PAGE: usize = 1_000;

#[derive(Debug, Default)]
struct State {
    epochs: HashMap<String, Epoch>,
    killed: HashMap<String, OffsetDateTime>,
    cursor: Cursor,
    synced_at: Option<Instant>,
}

/// The replica. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct RevocationReplica {
    store: Arc<dyn RevocationStore>,
    state: RwLock<State>,
    max_staleness: Duration,
}

/// What the replica knows about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    /// The `jti` or `origin_jti` is killed.
    pub killed: bool,
    /// The user's epoch, if any.
    pub epoch: Option<Epoch>,
}

impl RevocationReplica {
    /// Sync once (errors leave it stale, not failed) and keep syncing every
    /// `poll_interval` in the background until the replica is dropped.
    pub async fn start(store: Arc<dyn RevocationStore>, cfg: &ReplicaConfig) -> Arc<Self> {
        let replica = Arc::new(Self {
            store,
            state: RwLock::new(State::default()),
            max_staleness: cfg.max_staleness,
        });
        if let Err(err) = replica.sync().await {
            tracing::warn!(error = %crate::error_chain(&err), "revocation replica: first sync failed; token checks ask the store until it succeeds");
        }
        let weak = Arc::downgrade(&replica);
        let every = cfg.poll_interval;
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(every).await;
                let Some(replica) = weak.upgrade() else {
                    return;
                };
                match replica.sync().await {
                    Ok(()) if failing => {
                        tracing::info!("revocation replica: syncing again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(err) if !failing => {
                        tracing::warn!(error = %crate::error_chain(&err), "revocation replica: sync failed");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
        replica
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Every update is a plain insert: a panic elsewhere cannot leave the
        // maps half-written, so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Read the change log from the cursor (minus the overlap) to its end.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut since = {
            let state = self.read();
            if state.synced_at.is_some() {
                Cursor(state.cursor.0.saturating_sub(OVERLAP_MS))
            } else {
                Cursor::START
            }
        };
        loop {
            let batch = self.store.changes_since(since, PAGE).await?;
            let done = batch.changes.len() < PAGE || batch.next <= since;
            {
                let mut state = self.write();
                for change in batch.changes {
                    apply(&mut state, change);
                }
                state.cursor = state.cursor.max(batch.next);
            }
            since = batch.next;
            if done {
                break;
            }
        }
        let mut state = self.write();
        let now = OffsetDateTime::now_utc();
        state.killed.retain(|_, until| *until > now);
        state.synced_at = Some(started);
        Ok(())
    }

    /// What the replica knows about a token of `sub` with ids `ids`, or
    /// `None` when it is stale (ask the store).
    pub fn token_state(&self, sub: &str, ids: &[&str]) -> Option<TokenState> {
        let state = self.read();
        let fresh = state
            .synced_at
            .is_some_and(|t| t.elapsed() <= self.max_staleness);
        if !fresh {
            return None;
        }
        let now = OffsetDateTime::now_utc();
        let killed = ids
            .iter()
            .any(|id| state.killed.get(*id).is_some_and(|until| *until > now));
        Some(TokenState {
            killed,
            epoch: state.epochs.get(sub).copied(),
        })
    }

    /// Apply a change this instance just wrote, without waiting for a sync.
    pub fn note(&self, change: Change) {
        apply(&mut self.write(), change);
    }
}

/// A [`RevocationStore`] that answers reads from a [`RevocationReplica`]
/// while it is fresh and from the store behind it otherwise, and applies its
/// own writes to both. Like tower-sessions' `CachingSessionStore`, it is
/// itself a store, so callers never branch on whether a replica exists.
///
/// Meant for token checks (see the module docs for why sessions keep asking
/// the store).
///
/// ```no_run
/// # async fn demo() {
/// use std::sync::Arc;
/// use session_bridge::bridge::replica::{ReplicaConfig, ReplicatedRevocation};
/// use session_bridge_store::{MemoryStore, RevocationStore};
///
/// let store: Arc<dyn RevocationStore> = Arc::new(MemoryStore::default());
/// let revocation = ReplicatedRevocation::start(store, &ReplicaConfig::default()).await;
/// assert!(!revocation.is_killed("some-jti").await.unwrap());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReplicatedRevocation {
    replica: Arc<RevocationReplica>,
}

impl ReplicatedRevocation {
    /// Start a replica of `store` (see [`RevocationReplica::start`]) and
    /// wrap it.
    pub async fn start(store: Arc<dyn RevocationStore>, cfg: &ReplicaConfig) -> Self {
        Self {
            replica: RevocationReplica::start(store, cfg).await,
        }
    }

    /// The replica behind this store.
    pub fn replica(&self) -> &Arc<RevocationReplica> {
        &self.replica
    }

    fn fresh(&self) -> Option<RwLockReadGuard<'_, State>> {
        let state = self.replica.read();
        state
            .synced_at
            .is_some_and(|t| t.elapsed() <= self.replica.max_staleness)
            .then_some(state)
    }
}

#[async_trait::async_trait]
impl RevocationStore for ReplicatedRevocation {
    async fn epoch(&self, user: &str) -> session_bridge_store::StoreResult<Option<Epoch>> {
        if let Some(state) = self.fresh() {
            return Ok(state.epochs.get(user).copied());
        }
        self.replica.store.epoch(user).await
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> session_bridge_store::StoreResult<Epoch> {
        let epoch = self.replica.store.bump_epoch(user, to).await?;
        self.replica.note(Change::Epoch {
            user: user.to_owned(),
            epoch,
        });
        Ok(epoch)
    }

    async fn kill(
        &self,
        id: &str,
        expires_at: OffsetDateTime,
    ) -> session_bridge_store::StoreResult<()> {
        self.replica.store.kill(id, expires_at).await?;
        self.replica.note(Change::Killed {
            id: id.to_owned(),
            expires_at,
        });
        Ok(())
    }

    async fn is_killed(&self, id: &str) -> session_bridge_store::StoreResult<bool> {
        if let Some(state) = self.fresh() {
            let now = OffsetDateTime::now_utc();
            return Ok(state.killed.get(id).is_some_and(|until| *until > now));
        }
        self.replica.store.is_killed(id).await
    }

    async fn changes_since(
        &self,
        since: Cursor,
        limit: usize,
    ) -> session_bridge_store::StoreResult<session_bridge_store::ChangeBatch> {
        self.replica.store.changes_since(since, limit).await
    }

    async fn ping(&self) -> session_bridge_store::StoreResult<()> {
        self.replica.store.ping().await
    }
}

fn apply(state: &mut State, change: Change) {
    match change {
        Change::Epoch { user, epoch } => {
            let e = state.epochs.entry(user).or_insert(epoch);
            *e = (*e).max(epoch);
        }
        Change::Killed { id, expires_at } => {
            let until = state.killed.entry(id).or_insert(expires_at);
            *until = (*until).max(expires_at);
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use session_bridge_store::MemoryStore;

    fn cfg() -> ReplicaConfig {
        ReplicaConfig {
            replica: true,
            poll_interval: Duration::from_millis(50),
            max_staleness: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn follows_the_store_and_answers_locally() {
        let store = MemoryStore::default();
        store.bump_epoch("alice", 1_000).await.unwrap();
        store
            .kill(
                "jti-1",
                OffsetDateTime::now_utc() + time::Duration::minutes(5),
            )
            .await
            .unwrap();
        let replica = RevocationReplica::start(Arc::new(store.clone()), &cfg()).await;
        assert_eq!(
            replica.token_state("alice", &["jti-1"]),
            Some(TokenState {
                killed: true,
                epoch: Some(1_000)
            })
        );
        assert_eq!(
            replica.token_state("bob", &["jti-2"]),
            Some(TokenState {
                killed: false,
                epoch: None
            })
        );
        // Another instance writes; the next poll brings it here.
        store
            .kill(
                "jti-2",
                OffsetDateTime::now_utc() + time::Duration::minutes(5),
            )
            .await
            .unwrap();
        store.bump_epoch("bob", 2_000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            replica.token_state("bob", &["jti-2"]),
            Some(TokenState {
                killed: true,
                epoch: Some(2_000)
            })
        );
        // Epochs never move back, even when a change is replayed.
        replica.note(Change::Epoch {
            user: "bob".into(),
            epoch: 1_500,
        });
        assert_eq!(replica.token_state("bob", &[]).unwrap().epoch, Some(2_000));
    }

    #[tokio::test]
    async fn expired_kills_are_forgotten() {
        let store = MemoryStore::default();
        let replica = RevocationReplica::start(Arc::new(store), &cfg()).await;
        replica.note(Change::Killed {
            id: "old".into(),
            expires_at: OffsetDateTime::now_utc() - time::Duration::seconds(1),
        });
        assert!(!replica.token_state("u", &["old"]).unwrap().killed);
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl RevocationStore for Down {
        async fn epoch(&self, _: &str) -> session_bridge_store::StoreResult<Option<Epoch>> {
            Err(StoreError::InvalidArgument("down"))
        }
        async fn bump_epoch(&self, _: &str, _: Epoch) -> session_bridge_store::StoreResult<Epoch> {
            Err(StoreError::InvalidArgument("down"))
        }
        async fn kill(&self, _: &str, _: OffsetDateTime) -> session_bridge_store::StoreResult<()> {
            Err(StoreError::InvalidArgument("down"))
        }
        async fn is_killed(&self, _: &str) -> session_bridge_store::StoreResult<bool> {
            Err(StoreError::InvalidArgument("down"))
        }
        async fn changes_since(
            &self,
            _: Cursor,
            _: usize,
        ) -> session_bridge_store::StoreResult<session_bridge_store::ChangeBatch> {
            Err(StoreError::InvalidArgument("down"))
        }
        async fn ping(&self) -> session_bridge_store::StoreResult<()> {
            Err(StoreError::InvalidArgument("down"))
        }
    }

    #[tokio::test]
    async fn the_wrapper_answers_from_the_replica_and_writes_through() {
        let store = MemoryStore::default();
        let wrapped = ReplicatedRevocation::start(Arc::new(store.clone()), &cfg()).await;
        let until = OffsetDateTime::now_utc() + time::Duration::minutes(5);
        wrapped.kill("jti-1", until).await.unwrap();
        wrapped.bump_epoch("alice", 5_000).await.unwrap();
        // Written through to the store...
        assert!(store.is_killed("jti-1").await.unwrap());
        assert_eq!(store.epoch("alice").await.unwrap(), Some(5_000));
        // ...and answered locally before any poll.
        assert!(wrapped.is_killed("jti-1").await.unwrap());
        assert_eq!(wrapped.epoch("alice").await.unwrap(), Some(5_000));
        // Another instance's write arrives with the next poll.
        store.kill("jti-2", until).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(wrapped.is_killed("jti-2").await.unwrap());
    }

    #[tokio::test]
    async fn a_stale_wrapper_asks_the_store_and_fails_closed() {
        let wrapped = ReplicatedRevocation::start(Arc::new(Down), &cfg()).await;
        assert!(wrapped.is_killed("x").await.is_err());
        assert!(wrapped.epoch("alice").await.is_err());
    }

    #[tokio::test]
    async fn a_replica_that_cannot_sync_does_not_answer() {
        let replica = RevocationReplica::start(Arc::new(Down), &cfg()).await;
        assert_eq!(replica.token_state("alice", &["x"]), None);
    }
}
