//! Revocation state: epoch and killed-id items, and a change log in hourly
//! partitions of the same table. See the crate docs for the layout.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use session_bridge_store::{
    Change, ChangeBatch, Cursor, Epoch, RevocationStore, StoreError, StoreResult,
};
use time::OffsetDateTime;

use crate::DynamoDbStore;
use crate::error::{backend, decode, sdk_error};

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
const VALUE: &str = "v";
const KIND: &str = "k";
const SUBJECT: &str = "s";
const EXPIRES_AT: &str = crate::sessions::EXPIRES_AT;

/// Width of one change-log partition.
const BUCKET_MS: i64 = 3_600_000;
/// Log entries per millisecond one process can write (the sort key is
/// `ms * 1000 + n`).
const PER_MS: i64 = 1000;
/// How far ahead of the reader's clock a writer's clock may run and still
/// have its entries found.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// Attempts at a transaction that keeps being cancelled by concurrent ones.
const MAX_ATTEMPTS: u32 = 25;

type Item = HashMap<String, AttributeValue>;

fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Unix seconds, rounded up: an id stays killed at least until `t`.
fn ceil_seconds(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 { secs + 1 } else { secs }
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn get_n(item: &Item, name: &str) -> StoreResult<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| decode("revocation item lacks a numeric attribute"))
}

fn bucket_key(bucket: i64) -> String {
    format!("log#{bucket}")
}

fn parse_change(item: &Item) -> StoreResult<Option<Change>> {
    let subject = || {
        item.get(SUBJECT)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| decode("change log item lacks its subject"))
    };
    let kind = item.get(KIND).and_then(|v| v.as_s().ok());
    Ok(match kind.map(String::as_str) {
        Some("epoch") => Some(Change::Epoch {
            user: subject()?,
            epoch: get_n(item, VALUE)?,
        }),
        Some("killed") => Some(Change::Killed {
            id: subject()?,
            expires_at: OffsetDateTime::from_unix_timestamp(get_n(item, VALUE)?)
                .map_err(|_| decode("change log expiry out of range"))?,
        }),
        // Written by a newer version: skip, the cursor still moves past it.
        _ => None,
    })
}

/// How a guarded write ended.
enum Outcome {
    /// The change was made and logged.
    Changed,
    /// The condition on the state item failed: nothing to change.
    Unchanged,
}

impl DynamoDbStore {
    /// The next change-log sort key: this process's clock in ms, never going
    /// backwards, times [`PER_MS`] plus a counter within the millisecond.
    fn next_log_key(&self) -> i64 {
        let mut last = self
            .log_clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = now_millis() * PER_MS;
        *last = if now > *last { now } else { *last + 1 };
        *last
    }

    fn log_put(&self, sk: i64, kind: &str, subject: &str, value: i64) -> StoreResult<Put> {
        let ms = sk / PER_MS;
        let keep_until = ms / 1000 + self.log_retention.whole_seconds() + 1;
        Put::builder()
            .table_name(&self.tables.revocation)
            .item(PK, s(bucket_key(ms / BUCKET_MS)))
            .item(SK, n(sk))
            .item(KIND, s(kind))
            .item(SUBJECT, s(subject))
            .item(VALUE, n(value))
            .item(EXPIRES_AT, n(keep_until))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::Backend {
                store: crate::error::STORE,
                source: Box::new(e),
            })
    }

    /// Raise `v` of the state item `pk` to `value` (and set its TTL when
    /// `ttl`) if it is lower or missing, and append the change to the log —
    /// in one transaction, so a replica reading the log never misses a
    /// change that took effect.
    async fn raise(
        &self,
        pk: &str,
        kind: &str,
        subject: &str,
        value: i64,
        ttl: bool,
    ) -> StoreResult<Outcome> {
        let mut update = Update::builder()
            .table_name(&self.tables.revocation)
            .key(PK, s(pk))
            .key(SK, n(0))
            .condition_expression("attribute_not_exists(#v) OR #v < :v")
            .expression_attribute_names("#v", VALUE)
            .expression_attribute_values(":v", n(value));
        update = if ttl {
            update
                .update_expression("SET #v = :v, #t = :v")
                .expression_attribute_names("#t", EXPIRES_AT)
        } else {
            update.update_expression("SET #v = :v")
        };
        let update = update.build().map_err(|e| StoreError::Backend {
            store: crate::error::STORE,
            source: Box::new(e),
        })?;

        for attempt in 0..MAX_ATTEMPTS {
            let put = self.log_put(self.next_log_key(), kind, subject, value)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update.clone()).build())
                .transact_items(TransactWriteItem::builder().put(put).build())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Outcome::Changed),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                err.as_service_error()
            else {
                return Err(sdk_error(err));
            };
            let codes: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            match codes.as_slice() {
                ["ConditionalCheckFailed", ..] => return Ok(Outcome::Unchanged),
                // Another writer took this log key: draw the next one.
                [_, "ConditionalCheckFailed"] => continue,
                _ if codes.contains(&"TransactionConflict") => {
                    // A concurrent transaction on the same item: back off.
                    let pause = 5 * u64::from(attempt + 1) + u64::from(self.jitter() % 10);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                _ => return Err(sdk_error(err)),
            }
        }
        Err(backend(
            "a revocation write kept conflicting with concurrent writes",
        ))
    }

    fn jitter(&self) -> u32 {
        // Low bits of the clock: enough to spread retries apart.
        OffsetDateTime::now_utc().nanosecond()
    }

    async fn get_state(&self, pk: String) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.revocation)
            .key(PK, s(pk))
            .key(SK, n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    /// Log entries of one bucket with `from <= sk <= to`, oldest first, at
    /// most `max` of them.
    async fn query_log(
        &self,
        bucket: i64,
        from: i64,
        to: i64,
        max: usize,
    ) -> StoreResult<Vec<(i64, Item)>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = max.saturating_sub(out.len());
            if remaining == 0 {
                return Ok(out);
            }
            let page = self
                .client
                .query()
                .table_name(&self.tables.revocation)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(bucket_key(bucket)))
                .expression_attribute_values(":from", n(from))
                .expression_attribute_values(":to", n(to))
                .consistent_read(true)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                out.push((get_n(&item, SK)?, item));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl RevocationStore for DynamoDbStore {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        self.get_state(format!("epoch#{user}"))
            .await?
            .map(|item| get_n(&item, VALUE))
            .transpose()
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        let pk = format!("epoch#{user}");
        match self.raise(&pk, "epoch", user, to, false).await? {
            Outcome::Changed => Ok(to),
            Outcome::Unchanged => {
                // Stored is at least `to` (epochs only rise): report it.
                let stored = self
                    .get_state(pk)
                    .await?
                    .map(|item| get_n(&item, VALUE))
                    .transpose()?;
                Ok(stored.unwrap_or(to).max(to))
            }
        }
    }

    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        let until = ceil_seconds(expires_at);
        if until <= OffsetDateTime::now_utc().unix_timestamp() {
            return Ok(()); // Already over: nothing to remember.
        }
        self.raise(&format!("killed#{id}"), "killed", id, until, true)
            .await?;
        Ok(())
    }

    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        let Some(item) = self.get_state(format!("killed#{id}")).await? else {
            return Ok(false);
        };
        // Checked here: TTL deletes expired items late.
        Ok(get_n(&item, VALUE)? > OffsetDateTime::now_utc().unix_timestamp())
    }

    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        let mut batch = ChangeBatch {
            changes: Vec::new(),
            next: since,
        };
        if limit == 0 {
            return Ok(batch);
        }
        let now = now_millis();
        let horizon = now
            - self
                .log_retention
                .whole_milliseconds()
                .try_into()
                .unwrap_or(i64::MAX);
        let from_ms = since.0.saturating_add(1).max(horizon);
        let last_bucket = (now + CLOCK_SKEW_MS) / BUCKET_MS;
        let wanted = limit.saturating_add(1);

        let mut entries: Vec<(i64, Item)> = Vec::new();
        let mut bucket = from_ms / BUCKET_MS;
        while bucket <= last_bucket && entries.len() < wanted {
            let page = self
                .query_log(bucket, from_ms * PER_MS, i64::MAX, wanted - entries.len())
                .await?;
            entries.extend(page);
            bucket += 1;
        }

        // A cursor names a millisecond: never end a page inside one that has
        // more entries, or the next page would skip them.
        if entries.len() > limit {
            let ms = |e: &(i64, Item)| e.0 / PER_MS;
            let last = ms(&entries[limit - 1]);
            let extra = ms(&entries[limit]);
            entries.truncate(limit);
            if last == extra {
                if ms(&entries[0]) == last {
                    // One millisecond holds more than a page: return all of it.
                    entries = self
                        .query_log(
                            last / BUCKET_MS,
                            last * PER_MS,
                            last * PER_MS + PER_MS - 1,
                            usize::MAX,
                        )
                        .await?;
                } else {
                    entries.retain(|e| ms(e) != last);
                }
            }
        }

        for (sk, item) in &entries {
            if let Some(change) = parse_change(item)? {
                batch.changes.push(change);
            }
            batch.next = Cursor(sk / PER_MS);
        }
        Ok(batch)
    }

    /// A `GetItem` on each table: reachable, credentials valid, tables there.
    async fn ping(&self) -> StoreResult<()> {
        self.get_state("ping".to_owned()).await?;
        self.client
            .get_item()
            .table_name(&self.tables.sessions)
            .key(crate::sessions::ID, s("ping"))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        let t = OffsetDateTime::from_unix_timestamp(100).unwrap();
        assert_eq!(ceil_seconds(t), 100);
        assert_eq!(ceil_seconds(t + time::Duration::milliseconds(1)), 101);
    }

    #[test]
    fn unknown_change_kinds_are_skipped() {
        let item = Item::from([(KIND.to_owned(), s("future")), (VALUE.to_owned(), n(1))]);
        assert_eq!(parse_change(&item).unwrap(), None);
    }
}
