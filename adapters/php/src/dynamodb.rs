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

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use session_bridge_store::StoreError;

use crate::store::{Change, PhpSessionStore, backoff, validate_session_id};
use crate::{DEFAULT_GC_MAXLIFETIME, EncodeProblem, Error, Format, Limits, PhpSession};

const STORE: &str = "dynamodb-php";
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

    fn key(&self, id: &str) -> (String, AttributeValue) {
        (
            self.layout.hash_key.clone(),
            AttributeValue::S(self.item_id(id)),
        )
    }

    /// The item's data attribute as read, and its bytes when it is a live
    /// session as aws-sdk-php reads it (`data` and `expires` present,
    /// `expires > now`).
    fn live_data<'a>(
        &self,
        item: Option<&'a Item>,
    ) -> Result<(Option<&'a AttributeValue>, Option<&'a [u8]>), Error> {
        let Some(item) = item else {
            return Ok((None, None));
        };
        let raw = item.get(&self.layout.data_attribute);
        let bytes = match raw {
            Some(AttributeValue::S(s)) => Some(s.as_bytes()),
            Some(AttributeValue::B(b)) => Some(b.as_ref()),
            Some(_) => return Err(decode("data attribute is neither S nor B")),
            None => None,
        };
        let expires = match item.get(&self.layout.expires_attribute) {
            Some(AttributeValue::N(n)) => Some(
                n.parse::<f64>()
                    .map_err(|_| decode("expires attribute is not a number"))?,
            ),
            Some(_) => return Err(decode("expires attribute is not a number")),
            None => None,
        };
        let live = matches!(expires, Some(e) if e > now() as f64);
        Ok((raw, bytes.filter(|_| live)))
    }

    fn session(&self, bytes: Option<&[u8]>) -> Result<PhpSession, Error> {
        match bytes {
            Some(b) => PhpSession::decode(self.format, b, &self.limits),
            None => Ok(PhpSession::new(self.format)),
        }
    }

    fn data_value(&self, data: Vec<u8>) -> Result<AttributeValue, Error> {
        if data.len() > self.limits.max_input {
            return Err(Error::Encode(EncodeProblem::TooLarge));
        }
        match self.layout.data_type {
            DataType::String => String::from_utf8(data)
                .map(AttributeValue::S)
                .map_err(|_| Error::Encode(EncodeProblem::NotUtf8)),
            DataType::Binary => Ok(AttributeValue::B(Blob::new(data))),
        }
    }

    fn expires_value(&self) -> AttributeValue {
        let lifetime = i64::try_from(self.layout.lifetime.as_secs()).unwrap_or(i64::MAX);
        AttributeValue::N(now().saturating_add(lifetime).to_string())
    }

    /// Set `lock` (creating the item if needed), as aws-sdk-php's locking
    /// read does; returns the item.
    async fn lock(&self, id: &str, locking: &DynamoLocking) -> Result<Item, Error> {
        let (k, v) = self.key(id);
        let started = Instant::now();
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.layout.table)
                .key(k.clone(), v.clone())
                .update_expression("SET #lock = :one")
                .condition_expression("attribute_not_exists(#lock)")
                .expression_attribute_names("#lock", LOCK)
                .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(out) => return Ok(out.attributes().cloned().unwrap_or_default()),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    let waited = started.elapsed();
                    if waited >= locking.max_wait {
                        return Err(Error::Locked { waited });
                    }
                    let (lo, hi) = (locking.min_retry, locking.max_retry.max(locking.min_retry));
                    let pause = lo + (hi - lo).mul_f64(rand::random::<f64>());
                    tokio::time::sleep(pause.min(locking.max_wait - waited)).await;
                }
                Err(err) => return Err(sdk_error(err)),
            }
        }
    }

    /// Remove our `lock` without writing (the change failed or changed
    /// nothing). An item that only exists because locking created it is
    /// deleted.
    async fn unlock(&self, id: &str, had_data: bool) {
        let (k, v) = self.key(id);
        let result = if had_data {
            self.client
                .update_item()
                .table_name(&self.layout.table)
                .key(k, v)
                .update_expression("REMOVE #lock")
                .expression_attribute_names("#lock", LOCK)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk_error)
        } else {
            self.client
                .delete_item()
                .table_name(&self.layout.table)
                .key(k, v)
                .condition_expression("attribute_not_exists(#data)")
                .expression_attribute_names("#data", &self.layout.data_attribute)
                .send()
                .await
                .map(|_| ())
                .or_else(|err| {
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                    {
                        Ok(())
                    } else {
                        Err(sdk_error(err))
                    }
                })
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not release an aws-sdk-php session lock");
        }
    }

    /// Write `data` if the item still holds `old` (and, when `locked`, our
    /// lock, which the write removes). `Ok(false)` when the condition failed.
    async fn write(
        &self,
        id: &str,
        old: Option<&AttributeValue>,
        data: AttributeValue,
        locked: bool,
    ) -> Result<bool, Error> {
        let (k, v) = self.key(id);
        let mut condition = match old {
            Some(_) => "#data = :old".to_owned(),
            None => "attribute_not_exists(#data)".to_owned(),
        };
        let mut update = "SET #data = :data, #exp = :exp".to_owned();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .expression_attribute_names("#data", &self.layout.data_attribute)
            .expression_attribute_names("#exp", &self.layout.expires_attribute)
            .expression_attribute_values(":data", data)
            .expression_attribute_values(":exp", self.expires_value());
        if let Some(old) = old {
            req = req.expression_attribute_values(":old", old.clone());
        }
        if locked {
            condition.push_str(" AND attribute_exists(#lock)");
            update.push_str(" REMOVE #lock");
            req = req.expression_attribute_names("#lock", LOCK);
        }
        match req
            .update_expression(update)
            .condition_expression(condition)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Item>, Error> {
        let (k, v) = self.key(id);
        let out = self
            .client
            .get_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item().cloned())
    }

    /// One attempt: `Ok(None)` when the conditional write lost a race.
    async fn attempt(
        &self,
        id: &str,
        change: &mut Change<'_>,
    ) -> Result<Option<PhpSession>, Error> {
        let (item, locked) = match &self.locking {
            Some(locking) => (Some(self.lock(id, locking).await?), true),
            None => (self.get(id).await?, false),
        };
        let (old, bytes) = self.live_data(item.as_ref())?;
        let prepared = self.session(bytes).and_then(|mut session| {
            change(&mut session)?;
            let data = session.encode()?;
            let unchanged = match bytes {
                Some(b) => b == data,
                None => session.is_empty(),
            };
            Ok((session, data, unchanged))
        });
        let (session, data, unchanged) = match prepared {
            Ok(p) => p,
            Err(err) => {
                if locked {
                    self.unlock(id, old.is_some()).await;
                }
                return Err(err);
            }
        };
        if unchanged {
            if locked {
                self.unlock(id, old.is_some()).await;
            }
            return Ok(Some(session));
        }
        let data = match self.data_value(data) {
            Ok(d) => d,
            Err(err) => {
                if locked {
                    self.unlock(id, old.is_some()).await;
                }
                return Err(err);
            }
        };
        Ok(self.write(id, old, data, locked).await?.then_some(session))
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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn decode(what: &'static str) -> Error {
    Error::Store(StoreError::Decode {
        store: STORE,
        source: what.into(),
    })
}

/// Error codes that mean "not now": throttled after the SDK's own retries,
/// or a server-side failure.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

fn sdk_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let unavailable = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c)),
        _ => false,
    };
    Error::Store(if unavailable {
        StoreError::Unavailable {
            store: STORE,
            source: Box::new(err),
        }
    } else {
        StoreError::Backend {
            store: STORE,
            source: Box::new(err),
        }
    })
}
