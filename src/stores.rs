//! Opening the configured store.

use std::sync::Arc;

use session_bridge_store::{EmbeddedStore, MemoryStore, RevocationStore, SessionStore, StoreError};

use crate::config::{Config, StoreKind};

/// The store the service runs on, as the two traits it implements.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Which kind of store (for logs and `/readyz`).
    pub kind: StoreKind,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Epochs and killed token ids.
    pub revocation: Arc<dyn RevocationStore>,
}

/// Why the configured store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store refused to open (file locked by another process, corrupt
    /// file, bad client settings).
    #[error("cannot open the {kind} store")]
    Store {
        /// Store kind.
        kind: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// This build cannot open this kind of store yet.
    #[error("store kind `{0}` is not available in this build")]
    Unsupported(&'static str),
}

impl Stores {
    fn from_store<S>(kind: StoreKind, store: S) -> Self
    where
        S: SessionStore + RevocationStore + Clone,
    {
        Self {
            kind,
            sessions: Arc::new(store.clone()),
            revocation: Arc::new(store),
        }
    }

    /// Open the store `config` selects. Remote stores are connected lazily,
    /// so an unreachable server does not stop startup: `/readyz` reports it.
    pub async fn open(config: &Config) -> Result<Self, OpenError> {
        let kind = config.store.kind;
        match kind {
            StoreKind::Memory => Ok(Self::from_store(kind, MemoryStore::default())),
            StoreKind::Embedded => {
                let path = config
                    .store
                    .embedded
                    .path
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("store.redb"));
                let store =
                    EmbeddedStore::open(&path)
                        .await
                        .map_err(|source| OpenError::Store {
                            kind: kind.as_str(),
                            source,
                        })?;
                Ok(Self::from_store(kind, store))
            }
            StoreKind::Redis | StoreKind::DynamoDb => Err(OpenError::Unsupported(kind.as_str())),
        }
    }
}
