//! Opening the configured store.

use std::sync::Arc;

use session_bridge_store::{EmbeddedStore, MemoryStore, RevocationStore, SessionStore, StoreError};

use session_bridge_dynamodb::{DynamoDbStore, TableNames, aws_sdk_dynamodb};
use session_bridge_redis::RedisStore;

use crate::config::{Config, DynamoDbStoreConfig, RedisStoreConfig, StoreKind};

/// How long the stores' change logs keep entries: longer than any token
/// lives (24 h at most, plus leeway), so a revocation replica that starts
/// cold still sees every change that can matter to a live token.
const LOG_RETENTION: time::Duration = time::Duration::hours(25);

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
                Ok(Self::from_store(
                    kind,
                    store.with_log_retention(LOG_RETENTION),
                ))
            }
            StoreKind::Redis => Ok(Self::from_store(kind, open_redis(&config.store.redis)?)),
            StoreKind::DynamoDb => {
                let (client, tables) = dynamodb_client(&config.store.dynamodb).await;
                Ok(Self::from_store(
                    kind,
                    DynamoDbStore::new(client, tables).with_log_retention(LOG_RETENTION),
                ))
            }
        }
    }
}

/// Build the Redis client and start connecting in the background: startup
/// does not wait for Redis, and the client keeps reconnecting on its own.
fn open_redis(cfg: &RedisStoreConfig) -> Result<RedisStore, OpenError> {
    use session_bridge_redis::fred::prelude::*;
    let fail = |source: session_bridge_redis::fred::error::Error| OpenError::Store {
        kind: "redis",
        source: StoreError::Backend {
            store: "redis",
            source: Box::new(source),
        },
    };
    // Validated at load time; an empty URL cannot get here.
    let url = cfg.url.as_deref().unwrap_or_default();
    let client_config = Config::from_url(url).map_err(fail)?;
    let pool = session_bridge_redis::recommended_builder(client_config, cfg.timeout)
        .build_pool(POOL_SIZE)
        .map_err(fail)?;
    // `connect` spawns the connection tasks and returns at once.
    let _connections = pool.connect();
    Ok(RedisStore::new(pool)
        .with_key_prefix(cfg.key_prefix.clone())
        .with_timeout(cfg.timeout)
        .with_log_retention(LOG_RETENTION))
}

/// Connections per instance: enough to pipeline a busy instance's commands
/// without holding many sockets per process.
const POOL_SIZE: usize = 4;

/// A DynamoDB client from the standard AWS chain (environment, profile,
/// instance role), with the configured region and endpoint winning, and the
/// adapter's recommended timeouts and retries.
pub async fn dynamodb_client(cfg: &DynamoDbStoreConfig) -> (aws_sdk_dynamodb::Client, TableNames) {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &cfg.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &cfg.endpoint_url {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    let shared = loader.load().await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&shared)
        .timeout_config(session_bridge_dynamodb::recommended_timeouts(cfg.timeout))
        .retry_config(session_bridge_dynamodb::recommended_retries())
        .build();
    let tables = TableNames {
        sessions: cfg.sessions_table.clone(),
        revocation: cfg.revocation_table.clone(),
    };
    (aws_sdk_dynamodb::Client::from_conf(conf), tables)
}
