//! Failed-login counters per username and per client address, in memory,
//! with a hard cap on how many are kept.
//!
//! Attempts are charged *before* the password is checked and refunded on
//! success: otherwise a burst of parallel requests would all pass the check
//! before the first failure was counted.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::RateLimitConfig;

/// Usernames are counted by their first bytes only, so a megabyte-long
/// "username" costs no more memory than a real one.
const MAX_KEY_BYTES: usize = 128;

/// A counter of attempts per client address alone (e.g. starts of an OIDC
/// login, which write a pending record to the store).
#[derive(Debug)]
pub(crate) struct AddressLimiter(Counters<IpAddr>);

impl AddressLimiter {
    /// At most `max` attempts per address (IPv6 per /64) per `window`,
    /// tracking at most `cap` addresses.
    pub(crate) fn new(max: u32, window: Duration, cap: usize) -> Self {
        Self(Counters::new(max, window, cap))
    }

    /// Count an attempt from `client`, or refuse it with how long to wait.
    pub(crate) fn attempt(&mut self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = address_key(client);
        if let Some(wait) = self.0.blocked(&key, now) {
            return Err(wait);
        }
        self.0.charge(key, now);
        Ok(())
    }
}

/// The two counters a login attempt is charged to.
#[derive(Debug)]
pub(crate) struct Limiter {
    users: Counters<String>,
    addresses: Counters<IpAddr>,
}

impl Limiter {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            users: Counters::new(cfg.user_failures, cfg.user_window, cfg.max_tracked),
            addresses: Counters::new(cfg.address_failures, cfg.address_window, cfg.max_tracked),
        }
    }

    /// Count an attempt for `username` from `client`, or refuse it (counting
    /// nothing) with how long until it would be allowed. The answer does not
    /// depend on whether the user exists.
    pub(crate) fn begin(
        &mut self,
        username: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        let user = user_key(username);
        let address = address_key(client);
        let wait = [
            self.users.blocked(&user, now),
            self.addresses.blocked(&address, now),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.users.charge(user, now);
        self.addresses.charge(address, now);
        Ok(())
    }

    /// The attempt begun for `username` from `client` succeeded: clear the
    /// username's count and take back the address's charge (but do not
    /// clear it: one valid account must not reset a guesser's budget).
    pub(crate) fn succeeded(&mut self, username: &str, client: IpAddr, now: Instant) {
        self.users.forget(&user_key(username));
        self.addresses.refund(&address_key(client), now);
    }

    /// How many usernames and addresses are tracked.
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (self.users.entries.len(), self.addresses.entries.len())
    }
}

fn user_key(username: &str) -> String {
    let mut end = username.len().min(MAX_KEY_BYTES);
    while !username.is_char_boundary(end) {
        end -= 1;
    }
    super::names::fold(&username[..end])
}

/// IPv4 addresses as they are; IPv6 by /64 network, since one subscriber
/// usually holds a whole /64 and could otherwise rotate through it.
fn address_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[derive(Debug)]
struct Entry {
    count: u32,
    started: Instant,
    seq: u64,
}

/// Fixed-window counters with at most `cap` keys. `by_age` orders keys by
/// window start, so expired windows (always the oldest) and, when full, the
/// oldest live window are dropped in O(log n).
#[derive(Debug)]
struct Counters<K> {
    max: u32,
    window: Duration,
    cap: usize,
    entries: HashMap<K, Entry>,
    by_age: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new(max: u32, window: Duration, cap: usize) -> Self {
        Self {
            max,
            window,
            cap: cap.max(1),
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn live(&self, entry: &Entry, now: Instant) -> Option<Instant> {
        let end = entry.started + self.window;
        (now < end).then_some(end)
    }

    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let end = self.live(entry, now)?;
        (entry.count >= self.max).then(|| end - now)
    }

    fn charge(&mut self, key: K, now: Instant) {
        self.drop_expired(now);
        if let Some(entry) = self.entries.get_mut(&key) {
            if now < entry.started + self.window {
                entry.count = entry.count.saturating_add(1);
                return;
            }
            // Unreachable after `drop_expired`, kept for clarity: an
            // expired window starts over.
            let old = (entry.started, entry.seq);
            self.by_age.remove(&old);
            self.entries.remove(&key);
        }
        while self.entries.len() >= self.cap {
            // The oldest window is the one closest to ending anyway.
            match self.by_age.pop_first() {
                Some((_, oldest)) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_age.insert((now, seq), key.clone());
        self.entries.insert(
            key,
            Entry {
                count: 1,
                started: now,
                seq,
            },
        );
    }

    fn refund(&mut self, key: &K, now: Instant) {
        let window = self.window;
        if let Some(entry) = self.entries.get_mut(key)
            && now < entry.started + window
        {
            entry.count = entry.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_age.remove(&(entry.started, entry.seq));
        }
    }

    fn drop_expired(&mut self, now: Instant) {
        while let Some((&(started, _), _)) = self.by_age.first_key_value() {
            if now < started + self.window {
                break;
            }
            if let Some((_, key)) = self.by_age.pop_first() {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn limiter(user_failures: u32, address_failures: u32, max_tracked: usize) -> Limiter {
        Limiter::new(&RateLimitConfig {
            user_failures,
            user_window: 15 * MIN,
            address_failures,
            address_window: 10 * MIN,
            max_tracked,
            ..RateLimitConfig::default()
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn user_limit_holds_for_the_window_then_expires() {
        let mut limiter = limiter(5, 100, 1000);
        let t0 = Instant::now();
        for i in 0..5 {
            limiter
                .begin("alice", ip("192.0.2.1"), t0 + Duration::from_secs(i))
                .unwrap();
        }
        // Any case, any address: the same username.
        let wait = limiter
            .begin("ALICE", ip("198.51.100.7"), t0 + MIN)
            .unwrap_err();
        assert_eq!(wait, 14 * MIN);
        // Refused attempts are not counted: the window does not move.
        let wait = limiter
            .begin("alice", ip("192.0.2.1"), t0 + 2 * MIN)
            .unwrap_err();
        assert_eq!(wait, 13 * MIN);
        limiter.begin("bob", ip("192.0.2.1"), t0 + MIN).unwrap();
        limiter
            .begin("alice", ip("192.0.2.1"), t0 + 15 * MIN)
            .unwrap();
    }

    #[test]
    fn success_clears_the_user_but_only_refunds_the_address() {
        let mut limiter = limiter(3, 4, 1000);
        let (t0, addr) = (Instant::now(), ip("192.0.2.1"));
        for _ in 0..2 {
            limiter.begin("alice", addr, t0).unwrap();
        }
        limiter.begin("alice", addr, t0).unwrap();
        limiter.succeeded("alice", addr, t0);
        // alice starts from zero; the address has 2 failures left on 4.
        limiter.begin("alice", addr, t0).unwrap();
        limiter.begin("alice", addr, t0).unwrap();
        assert!(limiter.begin("carol", addr, t0).is_err());
    }

    #[test]
    fn address_limit_spans_usernames_and_ipv6_64s() {
        let mut limiter = limiter(100, 3, 1000);
        let t0 = Instant::now();
        limiter.begin("a", ip("2001:db8::1"), t0).unwrap();
        limiter.begin("b", ip("2001:db8::ffff:1"), t0).unwrap();
        limiter.begin("c", ip("2001:db8:0:0:1234::9"), t0).unwrap();
        assert!(limiter.begin("d", ip("2001:db8::2"), t0).is_err());
        limiter.begin("d", ip("2001:db8:0:1::1"), t0).unwrap();
        // An IPv4-mapped address counts as the IPv4 address.
        for _ in 0..3 {
            limiter.begin("e", ip("::ffff:192.0.2.9"), t0).unwrap();
        }
        assert!(limiter.begin("f", ip("192.0.2.9"), t0).is_err());
    }

    #[test]
    fn memory_is_capped_and_expired_counts_go() {
        let mut limiter = limiter(5, 1_000_000, 100);
        let t0 = Instant::now();
        limiter.begin("victim", ip("192.0.2.1"), t0).unwrap();
        for i in 0..10_000 {
            let at = t0 + Duration::from_millis(i);
            limiter
                .begin(&format!("spray{i}"), ip("192.0.2.1"), at)
                .unwrap();
        }
        let (users, addresses) = limiter.tracked();
        assert_eq!(users, 100);
        assert_eq!(addresses, 1);
        assert_eq!(limiter.users.by_age.len(), 100);
        // The oldest went first.
        assert!(!limiter.users.entries.contains_key("victim"));
        assert!(limiter.users.entries.contains_key("spray9999"));
        // Once every window has passed, the next attempt sweeps them out.
        limiter
            .begin("late", ip("192.0.2.2"), t0 + 20 * MIN)
            .unwrap();
        assert_eq!(limiter.tracked(), (1, 1));
    }

    #[test]
    fn huge_usernames_are_counted_by_a_bounded_key() {
        let long = "é".repeat(10_000);
        assert!(user_key(&long).len() <= MAX_KEY_BYTES);
        assert_eq!(user_key("Alice"), "alice");
    }
}
