use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::{SessionStore, session_store};

use crate::revocation::unix_millis;
use crate::{Change, ChangeBatch, Cursor, Epoch, RevocationStore, StoreResult, now};

/// Cut a page of the change log (entries oldest first, with their time in
/// ms) after `since`, at most `limit` entries.
///
/// A page never ends inside a millisecond that has more entries: a cursor
/// names only the millisecond, so the next page would skip the rest of it.
/// When one millisecond alone holds more than `limit` entries, the page holds
/// all of them.
pub(crate) fn page(
    entries: impl Iterator<Item = StoreResult<(i64, Change)>>,
    since: Cursor,
    limit: usize,
) -> StoreResult<ChangeBatch> {
    let mut taken: Vec<(i64, Change)> = Vec::new();
    for entry in entries {
        let (at, change) = entry?;
        if taken.len() >= limit {
            if taken.last().map(|(t, _)| *t) != Some(at) {
                break;
            }
            if taken.first().map(|(t, _)| *t) != Some(at) {
                taken.retain(|(t, _)| *t != at);
                break;
            }
        }
        taken.push((at, change));
    }
    Ok(ChangeBatch {
        next: taken.last().map_or(since, |(at, _)| Cursor(*at)),
        changes: taken.into_iter().map(|(_, change)| change).collect(),
    })
}

/// Sessions and revocation state in process memory.
///
/// For tests and single-instance library users: everything is lost when the
/// process exits. Cloning shares the state.
///
/// ```
/// use session_bridge_store::MemoryStore;
/// let store = MemoryStore::default();
/// let same = store.clone(); // shares the state
/// # let _ = same;
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<Id, Record>,
    epochs: HashMap<String, Epoch>,
    killed: HashMap<String, OffsetDateTime>,
    /// Change log keyed by (time in ms, sequence) so equal times keep order.
    log: BTreeMap<(i64, u64), Change>,
    seq: u64,
}

impl State {
    fn append(&mut self, change: Change) {
        self.seq += 1;
        let at = now();
        self.log.insert((unix_millis(at), self.seq), change);
        let horizon = unix_millis(at - crate::DEFAULT_LOG_RETENTION);
        self.log = self.log.split_off(&(horizon, 0));
    }
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // (every update is a single insert/remove), so a poisoned lock is safe
        // to keep using.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut state = self.state();
        while state.sessions.contains_key(&record.id) {
            record.id = Id::default();
        }
        state.sessions.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.state().sessions.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut state = self.state();
        match state.sessions.get(id) {
            Some(record) if record.expiry_date > now() => Ok(Some(record.clone())),
            Some(_) => {
                state.sessions.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.state().sessions.remove(id);
        Ok(())
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        Ok(self.state().epochs.get(user).copied())
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        let mut state = self.state();
        let current = state.epochs.get(user).copied();
        match current {
            Some(current) if current >= to => Ok(current),
            _ => {
                state.epochs.insert(user.to_owned(), to);
                state.append(Change::Epoch {
                    user: user.to_owned(),
                    epoch: to,
                });
                Ok(to)
            }
        }
    }

    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        let mut state = self.state();
        let entry = state.killed.entry(id.to_owned()).or_insert(expires_at);
        *entry = (*entry).max(expires_at);
        let expires_at = *entry;
        state.append(Change::Killed {
            id: id.to_owned(),
            expires_at,
        });
        Ok(())
    }

    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        let mut state = self.state();
        match state.killed.get(id) {
            Some(expiry) if *expiry > now() => Ok(true),
            Some(_) => {
                state.killed.remove(id);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        let state = self.state();
        let entries = state
            .log
            .range((since.0.saturating_add(1), 0)..)
            .map(|((at, _), change)| Ok((*at, change.clone())));
        page(entries, since, limit)
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
