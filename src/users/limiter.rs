//! Failed-login counters per username and per client address, in memory,
//! with a hard cap on how many are kept.
//!
//! Only failures count. A burst of parallel guesses must still not get more
//! password checks than the limit, so attempts in flight are tracked apart:
//! while failures plus attempts in flight would reach a limit, a new attempt
//! is told to wait for one of them to finish (it is not refused, and nothing
//! is charged for it). A refusal therefore always means "this many failures",
//! and its wait is the true time until their window ends.

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

/// Why an attempt may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many failures: allowed again after this long (whole seconds,
    /// rounded up, so a client that waits exactly this long gets in).
    Limited(Duration),
    /// Attempts in flight could reach the limit: wait for one to finish,
    /// then ask again.
    Busy,
}

/// The failure counters a login attempt is judged by, and the attempts in
/// flight.
#[derive(Debug)]
pub(crate) struct Limiter {
    users: Counters<String>,
    addresses: Counters<IpAddr>,
    users_in_flight: InFlight<String>,
    addresses_in_flight: InFlight<IpAddr>,
}

impl Limiter {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            users: Counters::new(cfg.user_failures, cfg.user_window, cfg.max_tracked),
            addresses: Counters::new(cfg.address_failures, cfg.address_window, cfg.max_tracked),
            users_in_flight: InFlight::default(),
            addresses_in_flight: InFlight::default(),
        }
    }

    /// Start an attempt for `username` from `client` (counted as in flight
    /// until [`Limiter::failed`], [`Limiter::succeeded`] or
    /// [`Limiter::abandoned`]), or say why not. The answer does not depend
    /// on whether the user exists.
    pub(crate) fn begin(
        &mut self,
        username: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Refusal> {
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
            return Err(Refusal::Limited(whole_seconds(wait)));
        }
        let users_full = self
            .users
            .count(&user, now)
            .saturating_add(self.users_in_flight.get(&user))
            >= self.users.max;
        let addresses_full = self
            .addresses
            .count(&address, now)
            .saturating_add(self.addresses_in_flight.get(&address))
            >= self.addresses.max;
        if users_full || addresses_full {
            return Err(Refusal::Busy);
        }
        self.users_in_flight.add(user);
        self.addresses_in_flight.add(address);
        Ok(())
    }

    /// The attempt begun for `username` from `client` failed: charge it.
    pub(crate) fn failed(&mut self, username: &str, client: IpAddr, now: Instant) {
        self.abandoned(username, client);
        self.users.charge(user_key(username), now);
        self.addresses.charge(address_key(client), now);
    }

    /// The attempt succeeded: it is not counted, and the username's
    /// failures are cleared (the address's are not: one valid account must
    /// not reset a guesser's budget).
    pub(crate) fn succeeded(&mut self, username: &str, client: IpAddr) {
        self.abandoned(username, client);
        self.users.forget(&user_key(username));
    }

    /// The attempt ended without a verdict (an error, or the request went
    /// away): it counts for nothing.
    pub(crate) fn abandoned(&mut self, username: &str, client: IpAddr) {
        self.users_in_flight.remove(&user_key(username));
        self.addresses_in_flight.remove(&address_key(client));
    }

    /// How many usernames and addresses are tracked.
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (self.users.entries.len(), self.addresses.entries.len())
    }
}

fn whole_seconds(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs)
}

/// Attempts in flight per key; a key leaves the map when its last attempt
/// ends, so the map holds at most one entry per running attempt.
#[derive(Debug)]
struct InFlight<K>(HashMap<K, u32>);

impl<K> Default for InFlight<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: Hash + Eq> InFlight<K> {
    fn get(&self, key: &K) -> u32 {
        self.0.get(key).copied().unwrap_or(0)
    }

    fn add(&mut self, key: K) {
        let n = self.0.entry(key).or_insert(0);
        *n = n.saturating_add(1);
    }

    fn remove(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(key);
            }
        }
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

    /// Failures counted for `key` in its live window.
    fn count(&self, key: &K, now: Instant) -> u32 {
        self.entries
            .get(key)
            .filter(|entry| self.live(entry, now).is_some())
            .map_or(0, |entry| entry.count)
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

    /// One attempt that fails.
    fn fail(limiter: &mut Limiter, user: &str, addr: &str, at: Instant) {
        limiter.begin(user, ip(addr), at).unwrap();
        limiter.failed(user, ip(addr), at);
    }

    fn limited(limiter: &mut Limiter, user: &str, addr: &str, at: Instant) -> Duration {
        match limiter.begin(user, ip(addr), at) {
            Err(Refusal::Limited(wait)) => wait,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_limit_holds_for_the_window_then_expires() {
        let mut limiter = limiter(5, 100, 1000);
        let t0 = Instant::now();
        for i in 0..5 {
            fail(
                &mut limiter,
                "alice",
                "192.0.2.1",
                t0 + Duration::from_secs(i),
            );
        }
        // Any case, any address: the same username.
        assert_eq!(
            limited(&mut limiter, "ALICE", "198.51.100.7", t0 + MIN),
            14 * MIN
        );
        // Refused attempts are not counted: the window does not move.
        assert_eq!(
            limited(&mut limiter, "alice", "192.0.2.1", t0 + 2 * MIN),
            13 * MIN
        );
        // The wait is rounded up, never down.
        assert_eq!(
            limited(
                &mut limiter,
                "alice",
                "192.0.2.1",
                t0 + Duration::from_millis(500)
            ),
            Duration::from_secs(900)
        );
        limiter.begin("bob", ip("192.0.2.1"), t0 + MIN).unwrap();
        limiter
            .begin("alice", ip("192.0.2.1"), t0 + 15 * MIN)
            .unwrap();
    }

    #[test]
    fn successes_never_count_and_clear_only_the_user() {
        let mut limiter = limiter(3, 4, 1000);
        let (t0, addr) = (Instant::now(), "192.0.2.1");
        for _ in 0..100 {
            limiter.begin("alice", ip(addr), t0).unwrap();
            limiter.succeeded("alice", ip(addr));
        }
        fail(&mut limiter, "alice", addr, t0);
        fail(&mut limiter, "alice", addr, t0);
        limiter.begin("alice", ip(addr), t0).unwrap();
        limiter.succeeded("alice", ip(addr));
        // alice starts from zero; the address keeps its 2 failures of 4.
        fail(&mut limiter, "alice", addr, t0);
        fail(&mut limiter, "alice", addr, t0);
        assert_eq!(limited(&mut limiter, "carol", addr, t0), 10 * MIN);
    }

    #[test]
    fn attempts_in_flight_make_others_wait_not_fail() {
        let mut limiter = limiter(100, 3, 1000);
        let (t0, addr) = (Instant::now(), ip("192.0.2.1"));
        fail(&mut limiter, "a", "192.0.2.1", t0);
        limiter.begin("b", addr, t0).unwrap();
        limiter.begin("c", addr, t0).unwrap();
        // One failure + two in flight could make three: wait, don't refuse.
        assert_eq!(limiter.begin("d", addr, t0), Err(Refusal::Busy));
        limiter.succeeded("b", addr);
        limiter.begin("d", addr, t0).unwrap();
        limiter.abandoned("d", addr);
        limiter.failed("c", addr, t0);
        // Two failures, nothing in flight: one more may try.
        limiter.begin("e", addr, t0).unwrap();
        assert_eq!(limiter.begin("f", addr, t0), Err(Refusal::Busy));
        limiter.failed("e", addr, t0);
        assert_eq!(limited(&mut limiter, "f", "192.0.2.1", t0), 10 * MIN);
        assert!(limiter.addresses_in_flight.0.is_empty());
        assert!(limiter.users_in_flight.0.is_empty());
    }

    #[test]
    fn address_limit_spans_usernames_and_ipv6_64s() {
        let mut limiter = limiter(100, 3, 1000);
        let t0 = Instant::now();
        fail(&mut limiter, "a", "2001:db8::1", t0);
        fail(&mut limiter, "b", "2001:db8::ffff:1", t0);
        fail(&mut limiter, "c", "2001:db8:0:0:1234::9", t0);
        limited(&mut limiter, "d", "2001:db8::2", t0);
        limiter.begin("d", ip("2001:db8:0:1::1"), t0).unwrap();
        // An IPv4-mapped address counts as the IPv4 address.
        for _ in 0..3 {
            fail(&mut limiter, "e", "::ffff:192.0.2.9", t0);
        }
        limited(&mut limiter, "f", "192.0.2.9", t0);
    }

    #[test]
    fn memory_is_capped_and_expired_counts_go() {
        let mut limiter = limiter(5, 1_000_000, 100);
        let t0 = Instant::now();
        fail(&mut limiter, "victim", "192.0.2.1", t0);
        for i in 0..10_000 {
            let at = t0 + Duration::from_millis(i);
            fail(&mut limiter, &format!("spray{i}"), "192.0.2.1", at);
        }
        let (users, addresses) = limiter.tracked();
        assert_eq!(users, 100);
        assert_eq!(addresses, 1);
        assert_eq!(limiter.users.by_age.len(), 100);
        // The oldest went first.
        assert!(!limiter.users.entries.contains_key("victim"));
        assert!(limiter.users.entries.contains_key("spray9999"));
        // Once every window has passed, the next failure sweeps them out.
        fail(&mut limiter, "late", "192.0.2.2", t0 + 20 * MIN);
        assert_eq!(limiter.tracked(), (1, 1));
    }

    #[test]
    fn huge_usernames_are_counted_by_a_bounded_key() {
        let long = "é".repeat(10_000);
        assert!(user_key(&long).len() <= MAX_KEY_BYTES);
        assert_eq!(user_key("Alice"), "alice");
    }
}
