use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion};

use crate::revocation::unix_millis;
use crate::{Change, ChangeBatch, Cursor, Epoch, RevocationStore, StoreError, StoreResult, now};

const STORE: &str = "embedded";

/// Session id (its string form) → MessagePack `Record`.
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// User → epoch in milliseconds.
const EPOCHS: TableDefinition<&str, i64> = TableDefinition::new("epochs");
/// Killed token id → expiry in Unix seconds.
const KILLED: TableDefinition<&str, i64> = TableDefinition::new("killed");
/// (time in ms, sequence) → MessagePack `Change`.
const LOG: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("changes");

/// Sessions and revocation state in one [redb] file on local disk.
///
/// The default store of `session-bridge serve`: durable across restarts
/// (every write is committed to disk before it returns) and needing no
/// server. One process owns the file at a time; several instances behind a
/// load balancer need a shared store (Redis, DynamoDB) instead.
///
/// Expired records are never returned; [`ExpiredDeletion::delete_expired`]
/// (run it periodically, e.g. with `continuously_delete_expired`) reclaims
/// their space.
///
/// ```no_run
/// # async fn demo() -> Result<(), session_bridge_store::StoreError> {
/// use session_bridge_store::EmbeddedStore;
/// let store = EmbeddedStore::open("/var/lib/session-bridge/store.redb").await?;
/// # Ok(()) }
/// ```
///
/// [redb]: https://docs.rs/redb
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    log_retention: time::Duration,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(err.into()),
    }
}

impl EmbeddedStore {
    /// Open the store file, creating it (and its tables) when missing.
    ///
    /// Fails when another process has the file open or an existing file is
    /// not a store file (an empty file included: it is never taken over).
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let opened = path.clone();
        let db = tokio::task::spawn_blocking(move || -> StoreResult<Database> {
            if !create_private_file(&opened)? {
                check_store_file(&opened)?;
            }
            let db = Database::create(&opened).map_err(backend)?;
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(SESSIONS).map_err(backend)?;
            txn.open_table(EPOCHS).map_err(backend)?;
            txn.open_table(KILLED).map_err(backend)?;
            txn.open_table(LOG).map_err(backend)?;
            txn.commit().map_err(backend)?;
            Ok(db)
        })
        .await
        .map_err(|e| StoreError::Backend {
            store: STORE,
            source: Box::new(e),
        })??;
        Ok(Self {
            db: Arc::new(db),
            path: Arc::new(path),
            log_retention: crate::DEFAULT_LOG_RETENTION,
        })
    }

    /// Keep change-log entries for `retention` (at least the longest token
    /// lifetime; default one day).
    #[must_use]
    pub fn with_log_retention(mut self, retention: time::Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on the blocking pool: redb's API is synchronous and commits
    /// wait for the disk.
    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend {
                store: STORE,
                source: Box::new(e),
            })?
    }

    /// Append `change` to the log inside `txn` and drop entries past retention.
    fn append(
        txn: &redb::WriteTransaction,
        change: &Change,
        retention: time::Duration,
    ) -> StoreResult<()> {
        let bytes = rmp_serde::to_vec(change).map_err(|e| StoreError::Encode {
            store: STORE,
            source: Box::new(e),
        })?;
        let mut log = txn.open_table(LOG).map_err(backend)?;
        let at = unix_millis(now());
        let seq = log
            .last()
            .map_err(backend)?
            .map(|(k, _)| {
                let (last_at, last_seq) = k.value();
                if last_at == at { last_seq + 1 } else { 0 }
            })
            .unwrap_or(0);
        log.insert((at, seq), bytes.as_slice()).map_err(backend)?;
        let horizon = unix_millis(now() - retention);
        log.retain_in((i64::MIN, 0)..(horizon, 0), |_, _| false)
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut candidate = record.clone();
        let id = self
            .blocking(move |db| {
                let txn = db.begin_write().map_err(backend)?;
                {
                    let mut table = txn.open_table(SESSIONS).map_err(backend)?;
                    // Write transactions are serialized, so check-then-insert
                    // cannot race another create.
                    loop {
                        let key = candidate.id.to_string();
                        let taken = table.get(key.as_str()).map_err(backend)?.is_some();
                        if !taken {
                            // Encoded here: the record carries its (new) id.
                            let bytes = encode_record(&candidate)?;
                            table
                                .insert(key.as_str(), bytes.as_slice())
                                .map_err(backend)?;
                            break;
                        }
                        candidate.id = Id::default();
                    }
                }
                txn.commit().map_err(backend)?;
                Ok(candidate.id)
            })
            .await?;
        record.id = id;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let record = record.clone();
        self.blocking(move |db| {
            let bytes = encode_record(&record)?;
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(SESSIONS)
                .map_err(backend)?
                .insert(record.id.to_string().as_str(), bytes.as_slice())
                .map_err(backend)?;
            txn.commit().map_err(backend)
        })
        .await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let key = id.to_string();
        let record = self
            .blocking(move |db| {
                let txn = db.begin_read().map_err(backend)?;
                let table = txn.open_table(SESSIONS).map_err(backend)?;
                let Some(bytes) = table.get(key.as_str()).map_err(backend)? else {
                    return Ok(None);
                };
                let record: Record =
                    rmp_serde::from_slice(bytes.value()).map_err(|e| StoreError::Decode {
                        store: STORE,
                        source: Box::new(e),
                    })?;
                Ok(Some(record))
            })
            .await?;
        Ok(record.filter(|r| r.expiry_date > now()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(SESSIONS)
                .map_err(backend)?
                .remove(key.as_str())
                .map_err(backend)?;
            txn.commit().map_err(backend)
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for EmbeddedStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let retention = self.log_retention;
        self.blocking(move |db| {
            let now_t = now();
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut sessions = txn.open_table(SESSIONS).map_err(backend)?;
                sessions
                    .retain(|_, bytes| {
                        // Undecodable records are kept: deleting data we do
                        // not understand is not this sweeper's call.
                        rmp_serde::from_slice::<Record>(bytes)
                            .map_or(true, |r| r.expiry_date > now_t)
                    })
                    .map_err(backend)?;
                let mut killed = txn.open_table(KILLED).map_err(backend)?;
                let now_s = now_t.unix_timestamp();
                killed.retain(|_, expiry| expiry > now_s).map_err(backend)?;
                let horizon = unix_millis(now_t - retention);
                let mut log = txn.open_table(LOG).map_err(backend)?;
                log.retain_in((i64::MIN, 0)..(horizon, 0), |_, _| false)
                    .map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await?;
        Ok(())
    }
}

/// Create the file readable by its owner only (it holds sessions) unless it
/// exists already.
/// Create the file with mode 0600; `false` when it already existed.
fn create_private_file(path: &Path) -> StoreResult<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::Backend {
            store: STORE,
            source: Box::new(e),
        }),
    }
}

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// An existing file must already be a store: redb would silently format an
/// empty one (a truncated copy, a mistyped path), and trusts content it
/// did not write.
fn check_store_file(path: &Path) -> StoreResult<()> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(REDB_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| StoreError::Backend {
            store: STORE,
            source: Box::new(e),
        })?;
    if head == REDB_MAGIC {
        return Ok(());
    }
    let what = if head.is_empty() {
        "it is empty"
    } else {
        "it does not start like one"
    };
    Err(StoreError::Backend {
        store: STORE,
        source: format!(
            "{} is not a store file ({what}); it was left untouched: move it away to start an empty store, or restore the right file",
            path.display()
        )
        .into(),
    })
}

fn encode_record(record: &Record) -> StoreResult<Vec<u8>> {
    rmp_serde::to_vec(record).map_err(|e| StoreError::Encode {
        store: STORE,
        source: Box::new(e),
    })
}

#[async_trait]
impl RevocationStore for EmbeddedStore {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        let user = user.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(EPOCHS).map_err(backend)?;
            Ok(table
                .get(user.as_str())
                .map_err(backend)?
                .map(|v| v.value()))
        })
        .await
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        let user = user.to_owned();
        let retention = self.log_retention;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let stored = {
                let mut table = txn.open_table(EPOCHS).map_err(backend)?;
                let current = table
                    .get(user.as_str())
                    .map_err(backend)?
                    .map(|v| v.value());
                match current {
                    Some(current) if current >= to => return Ok(current),
                    _ => table.insert(user.as_str(), to).map_err(backend)?,
                };
                to
            };
            Self::append(
                &txn,
                &Change::Epoch {
                    user,
                    epoch: stored,
                },
                retention,
            )?;
            txn.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }

    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        let id = id.to_owned();
        let retention = self.log_retention;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let expiry = {
                let mut table = txn.open_table(KILLED).map_err(backend)?;
                let current = table.get(id.as_str()).map_err(backend)?.map(|v| v.value());
                // Whole seconds, rounded up: a kill never ends early.
                let rounded_up =
                    expires_at.unix_timestamp() + i64::from(expires_at.nanosecond() > 0);
                let expiry = current.unwrap_or(i64::MIN).max(rounded_up);
                table.insert(id.as_str(), expiry).map_err(backend)?;
                expiry
            };
            let expires_at = OffsetDateTime::from_unix_timestamp(expiry).unwrap_or(expires_at);
            Self::append(&txn, &Change::Killed { id, expires_at }, retention)?;
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KILLED).map_err(backend)?;
            let expiry = table.get(id.as_str()).map_err(backend)?.map(|v| v.value());
            Ok(expiry.is_some_and(|e| e > now().unix_timestamp()))
        })
        .await
    }

    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(LOG).map_err(backend)?;
            let entries = table
                .range((since.0.saturating_add(1), 0)..)
                .map_err(backend)?
                .map(|entry| {
                    let (key, value) = entry.map_err(backend)?;
                    let change: Change =
                        rmp_serde::from_slice(value.value()).map_err(|e| StoreError::Decode {
                            store: STORE,
                            source: Box::new(e),
                        })?;
                    Ok((key.value().0, change))
                });
            crate::memory::page(entries, since, limit)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db| db.begin_read().map(|_| ()).map_err(backend))
            .await
    }
}
