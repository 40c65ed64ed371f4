//! Revocation state on Redis: epochs and killed ids as plain keys, changes in
//! a stream, each change published on a channel.
//!
//! Every revocation key carries the same hash tag (`{prefix}`), so in a
//! Cluster they all live in one slot and a Lua script can change a key and
//! append to the log atomically. The state is small (it is meant to be
//! replicated to every instance), so one slot is plenty.

use async_trait::async_trait;
use fred::interfaces::{KeysInterface, StreamsInterface};
use fred::types::scripts::Script;
use session_bridge_store::{
    Change, ChangeBatch, Cursor, Epoch, RevocationStore, StoreError, StoreResult,
};
use time::OffsetDateTime;

use crate::RedisStore;
use crate::error::{decode, redis_error, timed_out};

/// Raise `KEYS[1]` (epoch) to `ARGV[1]` unless it is already there; log and
/// publish the change. Returns the epoch now stored.
///
/// `ARGV`: epoch, user, oldest log entry to keep (ms), channel.
const BUMP_EPOCH: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return cur end
redis.call('SET', KEYS[1], ARGV[1])
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 'k', 'epoch', 's', ARGV[2], 'v', ARGV[1])
redis.call('PUBLISH', ARGV[4], id .. ' epoch ' .. ARGV[1] .. ' ' .. ARGV[2])
return ARGV[1]
";

/// Kill `KEYS[1]` until `ARGV[1]` (Unix seconds) unless it is killed until
/// then already or that time has passed; log and publish the change.
///
/// `ARGV`: expiry, id, oldest log entry to keep (ms), channel.
const KILL: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
if tonumber(ARGV[1]) <= tonumber(redis.call('TIME')[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[1])
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 'k', 'killed', 's', ARGV[2], 'v', ARGV[1])
redis.call('PUBLISH', ARGV[4], id .. ' killed ' .. ARGV[1] .. ' ' .. ARGV[2])
return 1
";

/// Epochs are compared as Lua numbers (doubles): keep them exact.
const MAX_EXACT: i64 = 1 << 53;

/// The compiled scripts (their SHA-1 is computed once).
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    bump_epoch: Script,
    kill: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            bump_epoch: Script::from_lua(BUMP_EPOCH),
            kill: Script::from_lua(KILL),
        }
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Unix seconds, rounded up: an id stays killed at least until `t`.
fn ceil_seconds(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 { secs + 1 } else { secs }
}

/// Milliseconds part of a stream entry id (`<ms>-<seq>`).
fn entry_millis(id: &str) -> StoreResult<i64> {
    id.split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .ok_or_else(|| decode("change log entry id is not <ms>-<seq>"))
}

type Entry = (String, std::collections::HashMap<String, String>);

fn parse_change(fields: &std::collections::HashMap<String, String>) -> StoreResult<Option<Change>> {
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| decode("change log entry lacks a field"))
    };
    let value = || -> StoreResult<i64> {
        field("v")?
            .parse()
            .map_err(|_| decode("change log value is not an integer"))
    };
    Ok(match field("k")?.as_str() {
        "epoch" => Some(Change::Epoch {
            user: field("s")?.clone(),
            epoch: value()?,
        }),
        "killed" => Some(Change::Killed {
            id: field("s")?.clone(),
            expires_at: OffsetDateTime::from_unix_timestamp(value()?)
                .map_err(|_| decode("change log expiry out of range"))?,
        }),
        // Written by a newer version: skip, the cursor still moves past it.
        _ => None,
    })
}

impl RedisStore {
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, fred::error::Error>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(redis_error),
            Err(elapsed) => Err(timed_out(elapsed)),
        }
    }

    /// Oldest change-log entry to keep, in ms.
    fn log_horizon(&self) -> String {
        millis(OffsetDateTime::now_utc() - self.log_retention).to_string()
    }

    async fn read_log(
        &self,
        start: String,
        end: String,
        count: Option<u64>,
    ) -> StoreResult<Vec<Entry>> {
        let log = self.keys.log();
        self.call(
            self.pool
                .xrange_values::<String, String, String, _, _, _>(log, start, end, count),
        )
        .await
    }
}

#[async_trait]
impl RevocationStore for RedisStore {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        let value: Option<String> = self.call(self.pool.get(self.keys.epoch(user))).await?;
        value
            .map(|v| v.parse().map_err(|_| decode("epoch is not an integer")))
            .transpose()
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        if !(-MAX_EXACT..=MAX_EXACT).contains(&to) {
            return Err(StoreError::InvalidArgument("epoch out of range"));
        }
        let keys = vec![self.keys.epoch(user), self.keys.log()];
        let args = vec![
            to.to_string(),
            user.to_owned(),
            self.log_horizon(),
            self.keys.log(),
        ];
        let stored: String = self
            .call(
                self.scripts
                    .bump_epoch
                    .evalsha_with_reload(self.pool.next(), keys, args),
            )
            .await?;
        stored
            .parse()
            .map_err(|_| decode("epoch is not an integer"))
    }

    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        let keys = vec![self.keys.killed(id), self.keys.log()];
        let args = vec![
            ceil_seconds(expires_at).to_string(),
            id.to_owned(),
            self.log_horizon(),
            self.keys.log(),
        ];
        let _changed: i64 = self
            .call(
                self.scripts
                    .kill
                    .evalsha_with_reload(self.pool.next(), keys, args),
            )
            .await?;
        Ok(())
    }

    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        let until: Option<i64> = self.call(self.pool.get(self.keys.killed(id))).await?;
        Ok(until.is_some_and(|until| until > OffsetDateTime::now_utc().unix_timestamp()))
    }

    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        let mut batch = ChangeBatch {
            changes: Vec::new(),
            next: since,
        };
        if limit == 0 {
            return Ok(batch);
        }
        let start = if since.0 < 0 {
            "-".to_owned()
        } else {
            (since.0 + 1).to_string()
        };
        let count = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let mut entries = self.read_log(start, "+".to_owned(), Some(count)).await?;

        // A cursor names a millisecond: never end a page inside one that has
        // more entries, or the next page would skip them.
        if entries.len() > limit {
            let last = entry_millis(&entries[limit - 1].0)?;
            let extra = entry_millis(&entries[limit].0)?;
            entries.truncate(limit);
            if last == extra {
                if entry_millis(&entries[0].0)? == last {
                    // One millisecond holds more than a page: return all of it.
                    entries = self
                        .read_log(last.to_string(), last.to_string(), None)
                        .await?;
                } else {
                    let mut keep = Vec::with_capacity(entries.len());
                    for entry in entries {
                        if entry_millis(&entry.0)? != last {
                            keep.push(entry);
                        }
                    }
                    entries = keep;
                }
            }
        }

        for (id, fields) in &entries {
            if let Some(change) = parse_change(fields)? {
                batch.changes.push(change);
            }
            batch.next = Cursor(entry_millis(id)?);
        }
        Ok(batch)
    }

    async fn ping(&self) -> StoreResult<()> {
        // A read in the revocation keys' slot: in a Cluster that asks the
        // node that holds them, where a PING would ask any node.
        let _: Option<String> = self.call(self.pool.get(self.keys.epoch(""))).await?;
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
    fn entry_ids_give_their_millisecond() {
        assert_eq!(entry_millis("1764417600123-7").unwrap(), 1_764_417_600_123);
        assert!(entry_millis("nonsense").is_err());
    }

    #[test]
    fn unknown_change_kinds_are_skipped() {
        let fields = [("k", "future"), ("s", "x"), ("v", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(parse_change(&fields).unwrap(), None);
    }
}
