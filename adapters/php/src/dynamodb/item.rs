//! The item operations: aws-sdk-php's layout, lock and conditional writes.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::error::{decode, sdk_error};
use super::{DataType, DynamoLocking, Item, LOCK, PhpDynamoDbStore};
use crate::store::Change;
use crate::{EncodeProblem, Error, PhpSession};

impl PhpDynamoDbStore {
    pub(super) fn key(&self, id: &str) -> (String, AttributeValue) {
        (
            self.layout.hash_key.clone(),
            AttributeValue::S(self.item_id(id)),
        )
    }

    /// The item's data attribute as read, and its bytes when it is a live
    /// session as aws-sdk-php reads it (`data` and `expires` present,
    /// `expires > now`).
    pub(super) fn live_data<'a>(
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

    pub(super) fn session(&self, bytes: Option<&[u8]>) -> Result<PhpSession, Error> {
        match bytes {
            Some(b) => PhpSession::decode(self.format, b, &self.limits),
            None => Ok(PhpSession::new(self.format)),
        }
    }

    pub(super) fn data_value(&self, data: Vec<u8>) -> Result<AttributeValue, Error> {
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

    pub(super) fn expires_value(&self) -> AttributeValue {
        let lifetime = i64::try_from(self.layout.lifetime.as_secs()).unwrap_or(i64::MAX);
        AttributeValue::N(now().saturating_add(lifetime).to_string())
    }

    /// Set `lock` (creating the item if needed), as aws-sdk-php's locking
    /// read does; returns the item.
    pub(super) async fn lock(&self, id: &str, locking: &DynamoLocking) -> Result<Item, Error> {
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
    pub(super) async fn unlock(&self, id: &str, had_data: bool) {
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
    pub(super) async fn write(
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

    pub(super) async fn get(&self, id: &str) -> Result<Option<Item>, Error> {
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
    pub(super) async fn attempt(
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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
