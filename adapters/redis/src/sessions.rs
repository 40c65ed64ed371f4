//! Sessions: tower-sessions-redis-store, with a timeout on every call and
//! the expiry checked on read.

use async_trait::async_trait;
use session_bridge_store::tower_sessions_core::session_store;
use session_bridge_store::{Id, Record, SessionStore};

use fred::interfaces::KeysInterface;
use fred::types::{Expiration, SetOptions};
use session_bridge_store::StoreError;

use crate::RedisStore;
use crate::error::{STORE, redis_error, timed_out};

impl RedisStore {
    /// Write `record` as tower-sessions-redis-store does (same key, same
    /// encoding), under `condition`; whether it was written.
    ///
    /// Done here rather than upstream: with fred 10, upstream turns the nil
    /// reply of a `SET NX`/`XX` that did not write into a parse error, so a
    /// colliding id fails `create` instead of drawing a new one.
    async fn set(&self, record: &Record, condition: SetOptions) -> session_store::Result<bool> {
        let bytes = rmp_serde::to_vec(record).map_err(|e| StoreError::Encode {
            store: STORE,
            source: Box::new(e),
        })?;
        let expiry = Expiration::EXAT(record.expiry_date.unix_timestamp());
        let written: Option<String> = self
            .pool
            .set(
                record.id.to_string(),
                bytes,
                Some(expiry),
                Some(condition),
                false,
            )
            .await
            .map_err(redis_error)?;
        Ok(written.is_some())
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = session_store::Result<T>>,
    ) -> session_store::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(elapsed) => Err(timed_out(elapsed).into()),
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    /// `SET id record NX EXAT expiry`, with a new id until one is free.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.bounded(async {
            while !self.set(record, SetOptions::NX).await? {
                record.id = Id::default();
            }
            Ok(())
        })
        .await
    }

    /// `SET id record XX EXAT expiry`: a session deleted meanwhile (logout on
    /// another request) or expired is not brought back, and that is not an
    /// error.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.bounded(self.set(record, SetOptions::XX)).await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let record = self.bounded(self.sessions.load(id)).await?;
        // Redis expires keys itself; the check covers replicas that still
        // answer with a key whose expiry has passed.
        Ok(record.filter(|r| r.expiry_date > time::OffsetDateTime::now_utc()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.bounded(self.sessions.delete(id)).await
    }
}
