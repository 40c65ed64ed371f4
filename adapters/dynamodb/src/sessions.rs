//! Sessions: one item per session, the record's data as MessagePack.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use session_bridge_store::tower_sessions_core::session_store;
use session_bridge_store::{Id, Record, SessionStore, StoreError};
use time::OffsetDateTime;

use crate::DynamoDbStore;
use crate::error::{STORE, decode, sdk_error};

/// Partition key: the session id (its string form).
pub(crate) const ID: &str = "id";
/// The record's data, MessagePack.
pub(crate) const DATA: &str = "data";
/// Expiry, Unix seconds; the table's TTL attribute.
pub(crate) const EXPIRES_AT: &str = "expires_at";

fn encode(record: &Record) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let data = rmp_serde::to_vec(&record.data).map_err(|e| StoreError::Encode {
        store: STORE,
        source: Box::new(e),
    })?;
    Ok(HashMap::from([
        (ID.to_owned(), AttributeValue::S(record.id.to_string())),
        (DATA.to_owned(), AttributeValue::B(Blob::new(data))),
        (
            EXPIRES_AT.to_owned(),
            AttributeValue::N(record.expiry_date.unix_timestamp().to_string()),
        ),
    ]))
}

fn decode_item(id: Id, item: &HashMap<String, AttributeValue>) -> Result<Record, StoreError> {
    let expires_at = item
        .get(EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| decode("session item lacks a numeric expires_at"))?;
    let data = item
        .get(DATA)
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| decode("session item lacks binary data"))?;
    Ok(Record {
        id,
        data: rmp_serde::from_slice(data.as_ref()).map_err(|e| StoreError::Decode {
            store: STORE,
            source: Box::new(e),
        })?,
        expiry_date: OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|_| decode("session expiry out of range"))?,
    })
}

impl DynamoDbStore {
    /// Put `record` under `condition`; whether the condition held.
    async fn put_session(&self, record: &Record, condition: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.sessions)
            .set_item(Some(encode(record)?))
            .condition_expression(condition)
            .expression_attribute_names("#id", ID)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoDbStore {
    /// `PutItem` if `attribute_not_exists(id)`, with a new id until one is
    /// free.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        while !self
            .put_session(record, "attribute_not_exists(#id)")
            .await?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    /// `PutItem` if `attribute_exists(id)`: a session deleted meanwhile
    /// (logout on another request) is not brought back, and that is not an
    /// error.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.put_session(record, "attribute_exists(#id)").await?;
        Ok(())
    }

    /// A consistent `GetItem`; an item past its expiry is not returned
    /// (DynamoDB's TTL deletes expired items late, within days).
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.sessions)
            .key(ID, AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let record = decode_item(*id, item)?;
        Ok((record.expiry_date > OffsetDateTime::now_utc()).then_some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.sessions)
            .key(ID, AttributeValue::S(id.to_string()))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
