//! Access tokens minted for upstreams, cached per session family.
//!
//! Signing costs far more than a map lookup (an RS256 signature is about a
//! millisecond), and forward-auth runs on every request: one token per
//! session family is reused until less than a third of its life is left.
//! The cache is never an authority: the request's own credential is
//! checked (revocation included) before a cached token is handed out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderValue;
use time::OffsetDateTime;

use crate::bridge::Bridge;
use crate::identity::Identity;

/// A bounded cache of `Authorization: Bearer …` values by token family.
#[derive(Debug)]
pub(super) struct UpstreamTokens {
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    sub: String,
    value: HeaderValue,
    refresh_at: OffsetDateTime,
}

impl UpstreamTokens {
    /// A cache of at most `capacity` families.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The bearer value for `identity`'s `family`: cached, or minted now.
    /// `None` when minting fails (logged).
    pub(super) fn get(
        &self,
        bridge: &Bridge,
        identity: &Identity,
        family: &str,
    ) -> Option<HeaderValue> {
        let now = OffsetDateTime::now_utc();
        if let Some(cached) = self.cached(family, &identity.sub, now) {
            return Some(cached);
        }
        // Minted outside the lock: two concurrent misses mint twice, which
        // is harmless.
        let minted = match bridge.mint_for(identity, family) {
            Ok(t) => t,
            Err(err) => {
                tracing::warn!(error = %crate::error_chain(&err), "could not mint a token for an upstream");
                return None;
            }
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {}", minted.token)).ok()?;
        value.set_sensitive(true);
        self.store(
            family,
            Entry {
                sub: identity.sub.clone(),
                value: value.clone(),
                refresh_at: refresh_at(now, minted.expires_at),
            },
            now,
        );
        Some(value)
    }

    /// The cached value for `family`, if it was minted for `sub` and more
    /// than a third of its life is left.
    fn cached(&self, family: &str, sub: &str, now: OffsetDateTime) -> Option<HeaderValue> {
        self.lock()
            .get(family)
            .filter(|e| e.sub == sub && now < e.refresh_at)
            .map(|e| e.value.clone())
    }

    /// Insert, evicting first the entries due for a refresh, then the one
    /// due soonest, when the cache is full.
    fn store(&self, family: &str, entry: Entry, now: OffsetDateTime) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(family) {
            entries.retain(|_, e| now < e.refresh_at);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.refresh_at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&soonest);
            }
        }
        entries.insert(family.to_owned(), entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are written whole; a panic elsewhere cannot leave one
        // half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// When a token minted at `now` and expiring at `expires_at` is replaced:
/// once less than a third of its life is left, so an upstream always gets
/// a token with a useful life ahead of it.
fn refresh_at(now: OffsetDateTime, expires_at: OffsetDateTime) -> OffsetDateTime {
    now + (expires_at - now) * 2 / 3
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(refresh_in: i64) -> Entry {
        Entry {
            sub: "s".into(),
            value: HeaderValue::from_static("Bearer x"),
            refresh_at: OffsetDateTime::now_utc() + time::Duration::seconds(refresh_in),
        }
    }

    #[test]
    fn a_token_is_reused_for_its_family_until_a_third_of_its_life_is_left() {
        let now = OffsetDateTime::now_utc();
        let minute = time::Duration::minutes(1);
        let at = refresh_at(now, now + 15 * minute);
        assert_eq!(at, now + 10 * minute);
        let cache = UpstreamTokens::new(10);
        cache.store(
            "family",
            Entry {
                sub: "s".into(),
                value: HeaderValue::from_static("Bearer x"),
                refresh_at: at,
            },
            now,
        );
        assert!(cache.cached("family", "s", now + 9 * minute).is_some());
        assert!(cache.cached("family", "s", now + 10 * minute).is_none());
        assert!(cache.cached("family", "other-sub", now).is_none());
        assert!(cache.cached("other-family", "s", now).is_none());
    }

    #[test]
    fn the_cache_stays_bounded_and_evicts_stale_then_soonest() {
        let now = OffsetDateTime::now_utc();
        let cache = UpstreamTokens::new(2);
        cache.store("a", entry(100), now);
        cache.store("b", entry(-1), now);
        cache.store("c", entry(50), now);
        let keys = |c: &UpstreamTokens| {
            let mut k: Vec<String> = c.lock().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&cache), ["a", "c"], "the stale entry goes first");
        cache.store("d", entry(200), now);
        assert_eq!(keys(&cache), ["a", "d"], "then the one due soonest");
        cache.store("a", entry(300), now);
        assert_eq!(keys(&cache), ["a", "d"], "a refresh replaces in place");
    }
}
