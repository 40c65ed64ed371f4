//! aws-sdk-php items' expiry and the bridge's per-user index item (the
//! layout is in [`crate::index`]). The index item is rewritten whole with a
//! condition on its `version`, retried on a conflict.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::error::{decode, sdk_error};
use super::{DynamoLocking, Item, LOCK, PhpDynamoDbStore};
use crate::index::{INDEX_MARKER, now};
use crate::store::backoff;
use crate::{Error, IndexedSession, PhpRecord};

const SESSIONS: &str = "sessions";
const VERSION: &str = "version";
const FAMILY: &str = "family";
const EXPIRES: &str = "expires";

/// Whether an SDK error is a failed condition (a lost race, or a record
/// that is not there).
macro_rules! condition_failed {
    ($err:expr) => {
        $err.as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception())
    };
}

/// The index as read: its entries by id, and its version (`None`: no item).
struct Index {
    entries: HashMap<String, IndexedSession>,
    version: Option<i64>,
}

impl PhpDynamoDbStore {
    /// The hash key value of `sub`'s index item.
    fn index_id(&self, sub: &str) -> (String, AttributeValue) {
        let id = format!("{}_{INDEX_MARKER}{sub}", self.layout.session_name);
        (
            self.layout.hash_key.clone(),
            AttributeValue::S(id.trim_start_matches('_').to_owned()),
        )
    }

    /// The `expires` of an item, in whole seconds.
    fn expires_of(&self, item: &Item) -> Result<Option<i64>, Error> {
        match item.get(&self.layout.expires_attribute) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse::<f64>()
                .map(|e| {
                    // Unix seconds: well inside i64.
                    #[allow(clippy::cast_possible_truncation)]
                    Some(e.floor() as i64)
                })
                .map_err(|_| decode("expires attribute is not a number")),
            Some(_) => Err(decode("expires attribute is not a number")),
        }
    }

    pub(super) async fn load_record_of(&self, id: &str) -> Result<Option<PhpRecord>, Error> {
        let item = self.get(id).await?;
        let (_, bytes) = self.live_data(item.as_ref())?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let session = self.session(Some(bytes))?;
        let expires_at = match &item {
            Some(item) => self.expires_of(item)?,
            None => None,
        };
        Ok(Some(PhpRecord {
            session,
            expires_at,
        }))
    }

    /// Take aws-sdk-php's lock of a live session if it is free right now.
    async fn try_lock_live(&self, id: &str) -> Result<bool, Error> {
        let (k, v) = self.key(id);
        let result = self
            .client
            .update_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .update_expression("SET #lock = :one")
            .condition_expression(
                "attribute_not_exists(#lock) AND attribute_exists(#data) AND #exp > :now",
            )
            .expression_attribute_names("#lock", LOCK)
            .expression_attribute_names("#data", &self.layout.data_attribute)
            .expression_attribute_names("#exp", &self.layout.expires_attribute)
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if condition_failed!(err) => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    pub(super) async fn touch_of(
        &self,
        id: &str,
        locking: Option<&DynamoLocking>,
    ) -> Result<Option<i64>, Error> {
        // With locking: a PHP request holding the lock writes `expires`
        // itself when it ends; a missing or expired session stays so.
        if locking.is_some() && !self.try_lock_live(id).await? {
            return Ok(None);
        }
        let (k, v) = self.key(id);
        let AttributeValue::N(new) = self.expires_value() else {
            return Ok(None);
        };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .expression_attribute_names("#data", &self.layout.data_attribute)
            .expression_attribute_names("#exp", &self.layout.expires_attribute)
            .expression_attribute_values(":exp", AttributeValue::N(new.clone()));
        req = if locking.is_some() {
            req.update_expression("SET #exp = :exp REMOVE #lock")
                .condition_expression("attribute_exists(#lock) AND attribute_exists(#data)")
                .expression_attribute_names("#lock", LOCK)
        } else {
            req.update_expression("SET #exp = :exp")
                .condition_expression("attribute_exists(#data) AND #exp > :now")
                .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
        };
        match req.send().await {
            Ok(_) => Ok(new.parse().ok()),
            Err(err) if condition_failed!(err) => Ok(None),
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn read_index(&self, sub: &str) -> Result<Index, Error> {
        let (k, v) = self.index_id(sub);
        let out = self
            .client
            .get_item()
            .table_name(&self.layout.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = out.item() else {
            return Ok(Index {
                entries: HashMap::new(),
                version: None,
            });
        };
        let bad = || decode("not a session-bridge index item");
        let version = match item.get(VERSION) {
            Some(AttributeValue::N(n)) => n.parse::<i64>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let mut entries = HashMap::new();
        if let Some(sessions) = item.get(SESSIONS) {
            let sessions = sessions.as_m().map_err(|_| bad())?;
            for (id, entry) in sessions {
                let entry = entry.as_m().map_err(|_| bad())?;
                let family = entry.get(FAMILY).and_then(|f| f.as_s().ok());
                let expires = entry
                    .get(EXPIRES)
                    .and_then(|e| e.as_n().ok())
                    .and_then(|e| e.parse::<i64>().ok());
                let (Some(family), Some(expires)) = (family, expires) else {
                    return Err(bad());
                };
                if crate::validate_session_id(id).is_ok() {
                    entries.insert(
                        id.clone(),
                        IndexedSession {
                            id: id.clone(),
                            family: family.clone(),
                            expires_at: expires,
                        },
                    );
                }
            }
        }
        Ok(Index {
            entries,
            version: Some(version),
        })
    }

    /// Write `index` back if nobody else did since it was read; `Ok(false)`
    /// on a lost race.
    async fn write_index(&self, sub: &str, index: &Index) -> Result<bool, Error> {
        let (k, v) = self.index_id(sub);
        let key_name = k.clone();
        if index.entries.is_empty() {
            let Some(version) = index.version else {
                return Ok(true);
            };
            let result = self
                .client
                .delete_item()
                .table_name(&self.layout.table)
                .key(k, v)
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(err) if condition_failed!(err) => Ok(false),
                Err(err) => Err(sdk_error(err)),
            };
        }
        let sessions = index
            .entries
            .values()
            .map(|e| {
                let entry = HashMap::from([
                    (FAMILY.to_owned(), AttributeValue::S(e.family.clone())),
                    (
                        EXPIRES.to_owned(),
                        AttributeValue::N(e.expires_at.to_string()),
                    ),
                ]);
                (e.id.clone(), AttributeValue::M(entry))
            })
            .collect();
        let latest = index
            .entries
            .values()
            .map(|e| e.expires_at)
            .max()
            .unwrap_or_default();
        let next = index.version.unwrap_or(0).saturating_add(1);
        let mut req = self
            .client
            .put_item()
            .table_name(&self.layout.table)
            .item(k, v)
            .item(SESSIONS, AttributeValue::M(sessions))
            .item(
                &self.layout.expires_attribute,
                AttributeValue::N(latest.to_string()),
            )
            .item(VERSION, AttributeValue::N(next.to_string()));
        req = match index.version {
            Some(version) => req
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(version.to_string())),
            None => req
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", key_name),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(err) if condition_failed!(err) => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Read, change and write back `sub`'s index, retrying lost races.
    async fn change_index(
        &self,
        sub: &str,
        change: &mut (dyn FnMut(&mut Index) + Send),
    ) -> Result<(), Error> {
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(
                    attempt,
                    Duration::from_millis(5),
                    Duration::from_millis(100),
                ))
                .await;
            }
            let mut index = self.read_index(sub).await?;
            change(&mut index);
            if self.write_index(sub, &index).await? {
                return Ok(());
            }
        }
        Err(Error::Conflict {
            attempts: self.max_attempts,
        })
    }

    pub(super) async fn remember_of(&self, sub: &str, entry: &IndexedSession) -> Result<(), Error> {
        // Lapsed entries: PHP may have kept their records alive. Their
        // records' expiry, or `None` when they are gone.
        let mut checked = HashMap::new();
        for lapsed in self.read_index(sub).await?.entries.into_values() {
            if lapsed.expires_at <= now() && lapsed.id != entry.id {
                let record = self.get(&lapsed.id).await?;
                let alive = match (self.live_data(record.as_ref())?, &record) {
                    ((_, Some(_)), Some(item)) => self.expires_of(item)?,
                    _ => None,
                };
                checked.insert(lapsed.id, alive);
            }
        }
        self.change_index(sub, &mut |index: &mut Index| {
            for (id, alive) in &checked {
                match alive {
                    Some(expires) => {
                        if let Some(e) = index.entries.get_mut(id) {
                            e.expires_at = e.expires_at.max(*expires);
                        }
                    }
                    None => {
                        index.entries.remove(id);
                    }
                }
            }
            let e = index
                .entries
                .entry(entry.id.clone())
                .or_insert_with(|| entry.clone());
            e.family.clone_from(&entry.family);
            e.expires_at = e.expires_at.max(entry.expires_at);
        })
        .await
    }

    pub(super) async fn sessions_of_sub(&self, sub: &str) -> Result<Vec<IndexedSession>, Error> {
        Ok(self.read_index(sub).await?.entries.into_values().collect())
    }

    pub(super) async fn forget_of(
        &self,
        sub: &str,
        entries: &[IndexedSession],
    ) -> Result<(), Error> {
        self.change_index(sub, &mut |index: &mut Index| {
            for e in entries {
                index.entries.remove(&e.id);
            }
        })
        .await
    }
}
