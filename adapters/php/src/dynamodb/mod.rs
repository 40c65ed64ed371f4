//! Session items of aws-sdk-php's DynamoDB `SessionHandler`.
//!
//! | attribute | aws-sdk-php |
//! | --- | --- |
//! | `id` (hash key, S) | `trim(<session name> . '_' . <id>, '_')`: `PHPSESSID_<id>` |
//! | `data` (S, or B with `data_attribute_type = binary`) | the serialized session |
//! | `expires` (N) | Unix seconds: `time() + session_lifetime` at every write; a read with `expires <= time()` is an empty session |
//! | `lock` (N, `1`) | with `locking = true`: set by an `UpdateItem` conditioned on `lock` not existing (retried every 10–50 ms for up to 10 s), removed by the request's write |
//!
//! Attribute names other than `lock` are configurable in aws-sdk-php
//! (`hash_key`, `data_attribute`, `session_lifetime_attribute`), and here.

mod error;
mod index;
mod item;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::store::{Change, PhpSessionStore, backoff, validate_session_id};
use crate::{DEFAULT_GC_MAXLIFETIME, Error, Format, IndexedSession, Limits, PhpRecord, PhpSession};
use error::sdk_error;

/// aws-sdk-php's lock attribute (not configurable there).
const LOCK: &str = "lock";

type Item = HashMap<String, AttributeValue>;

/// Type of the data attribute (aws-sdk-php's `data_attribute_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataType {
    /// `S` (aws-sdk-php's default): the session must be UTF-8.
    #[default]
    String,
    /// `B`.
    Binary,
}

/// Names and settings of aws-sdk-php's `SessionHandler`, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoLayout {
    /// `table_name`.
    pub table: String,
    /// `session.name`, prefixed to ids: `PHPSESSID`.
    pub session_name: String,
    /// `hash_key`: `id`.
    pub hash_key: String,
    /// `data_attribute`: `data`.
    pub data_attribute: String,
    /// `data_attribute_type`.
    pub data_type: DataType,
    /// `session_lifetime_attribute`: `expires`.
    pub expires_attribute: String,
    /// `session_lifetime` (else `session.gc_maxlifetime`): 1440 s.
    pub lifetime: Duration,
}

impl Default for DynamoLayout {
    fn default() -> Self {
        Self {
            table: "sessions".to_owned(),
            session_name: "PHPSESSID".to_owned(),
            hash_key: "id".to_owned(),
            data_attribute: "data".to_owned(),
            data_type: DataType::String,
            expires_attribute: "expires".to_owned(),
            lifetime: DEFAULT_GC_MAXLIFETIME,
        }
    }
}

/// aws-sdk-php's pessimistic locking (`locking = true`), with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoLocking {
    /// `max_lock_wait_time`: 10 s.
    pub max_wait: Duration,
    /// `min_lock_retry_microtime`: 10 ms.
    pub min_retry: Duration,
    /// `max_lock_retry_microtime`: 50 ms.
    pub max_retry: Duration,
}

impl Default for DynamoLocking {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(10),
            min_retry: Duration::from_millis(10),
            max_retry: Duration::from_millis(50),
        }
    }
}

/// aws-sdk-php DynamoDB session items.
///
/// # Concurrency
///
/// Without locking, [`update`](PhpSessionStore::update) reads the item
/// (consistently) and writes it back with a condition that `data` still
/// holds what was read (or is still absent), retrying on a conflict, so a
/// PHP write landing in between is never lost. With
/// [`with_locking`](Self::with_locking) it does what aws-sdk-php's
/// `LockingSessionConnection` does: sets `lock` with a conditional update
/// (waiting, with randomised retries, while a PHP request holds it), then
/// writes `data` and `expires` and removes `lock` in one update; that write
/// is also conditioned on the lock and the data read, in case a non-locking
/// writer cleared the lock meanwhile. [`delete`](PhpSessionStore::delete)
/// waits for the lock too.
///
/// The lock carries no owner (aws-sdk-php writes `1`), so every writer of
/// a table — PHP and each bridge instance — must agree on whether locking
/// is on: a non-locking writer that changes `data` while the lock stays
/// would make a locking one wait for a lock nobody releases.
#[derive(Debug, Clone)]
pub struct PhpDynamoDbStore {
    client: Client,
    layout: DynamoLayout,
    format: Format,
    limits: Limits,
    locking: Option<DynamoLocking>,
    max_attempts: u32,
}

impl PhpDynamoDbStore {
    /// Items in `layout.table` laid out as aws-sdk-php writes them, format
    /// `php`, no locking.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), session_bridge_php::Error> {
    /// use session_bridge_php::aws_sdk_dynamodb::{Client, Config, config::{BehaviorVersion, Region}};
    /// use session_bridge_php::{DynamoLayout, DynamoLocking, PhpDynamoDbStore, PhpSessionStore};
    ///
    /// let config = Config::builder()
    ///     .behavior_version(BehaviorVersion::latest())
    ///     .region(Region::new("eu-west-1"))
    ///     .build();
    /// let store = PhpDynamoDbStore::new(Client::from_conf(config), DynamoLayout {
    ///     table: "php_sessions".into(),
    ///     ..DynamoLayout::default()
    /// })
    /// .with_locking(DynamoLocking::default()); // SessionHandler::fromClient($c, ['locking' => true])
    /// let session = store.load("a8f5f167f44f4964e6c998dee827110c").await?;
    /// # let _ = session;
    /// # Ok(()) }
    /// ```
    pub fn new(client: Client, layout: DynamoLayout) -> Self {
        Self {
            client,
            layout,
            format: Format::Php,
            limits: Limits::default(),
            locking: None,
            max_attempts: 5,
        }
    }

    /// The app's `session.serialize_handler`.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Bounds on the records decoded (and written).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Take aws-sdk-php's session lock before writing or deleting.
    #[must_use]
    pub fn with_locking(mut self, locking: DynamoLocking) -> Self {
        self.locking = Some(locking);
        self
    }

    /// Read-modify-write attempts before [`Error::Conflict`] (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The hash key value of session `id`: `PHPSESSID_<id>`.
    pub fn item_id(&self, id: &str) -> String {
        format!("{}_{id}", self.layout.session_name)
            .trim_matches('_')
            .to_owned()
    }
}

#[async_trait]
impl PhpSessionStore for PhpDynamoDbStore {
    async fn load(&self, id: &str) -> Result<Option<PhpSession>, Error> {
        validate_session_id(id)?;
        let item = self.get(id).await?;
        match self.live_data(item.as_ref())? {
            (_, Some(bytes)) => self.session(Some(bytes)).map(Some),
            (_, None) => Ok(None),
        }
    }

    async fn load_record(&self, id: &str) -> Result<Option<PhpRecord>, Error> {
        validate_session_id(id)?;
        self.load_record_of(id).await
    }

    async fn touch(&self, id: &str) -> Result<Option<i64>, Error> {
        validate_session_id(id)?;
        self.touch_of(id, self.locking.as_ref()).await
    }

    async fn remember(&self, sub: &str, entry: &IndexedSession) -> Result<(), Error> {
        validate_session_id(&entry.id)?;
        self.remember_of(sub, entry).await
    }

    async fn sessions_of(&self, sub: &str) -> Result<Vec<IndexedSession>, Error> {
        self.sessions_of_sub(sub).await
    }

    async fn forget(&self, sub: &str, entries: &[IndexedSession]) -> Result<(), Error> {
        self.forget_of(sub, entries).await
    }

    async fn update(&self, id: &str, change: &mut Change<'_>) -> Result<PhpSession, Error> {
        validate_session_id(id)?;
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(
                    attempt,
                    Duration::from_millis(5),
                    Duration::from_millis(100),
                ))
                .await;
            }
            if let Some(session) = self.attempt(id, change).await? {
                return Ok(session);
            }
        }
        Err(Error::Conflict {
            attempts: self.max_attempts,
        })
    }

    async fn delete(&self, id: &str) -> Result<bool, Error> {
        validate_session_id(id)?;
        // With locking, wait for a PHP request holding the session: its
        // write would bring the session back.
        let held = match &self.locking {
            Some(locking) => Some(self.lock(id, locking).await?),
            None => None,
        };
        let (k, v) = self.key(id);
        let out = self
            .client
            .delete_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        let old = held.or_else(|| out.attributes().cloned());
        Ok(self.live_data(old.as_ref())?.1.is_some())
    }
}
