//! The way into a password check: the [`Limiter`] behind a lock, plus the
//! waiting it asks for while attempts are in flight.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::RateLimitConfig;
use super::limiter::{Limiter, Refusal};

/// Longest an attempt waits for others in flight before it gives up. Checks
/// take tens of milliseconds each, so this is only reached when the checks
/// are starved; the client is then told to retry shortly.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// The `Retry-After` given when [`MAX_WAIT`] is reached.
const RETRY_SOON: Duration = Duration::from_secs(1);

pub(crate) struct LoginGate {
    limiter: Mutex<Limiter>,
    /// Signalled whenever an attempt in flight ends.
    settled: Notify,
}

impl LoginGate {
    pub(crate) fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            limiter: Mutex::new(Limiter::new(cfg)),
            settled: Notify::new(),
        }
    }

    fn limiter(&self) -> MutexGuard<'_, Limiter> {
        // The limiter's fields are updated whole: a poisoned lock is usable.
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start an attempt for `username` from `client`, waiting while attempts
    /// in flight could reach a limit; or refuse it with how long until it
    /// would be allowed.
    pub(crate) async fn enter(
        self: &Arc<Self>,
        username: &str,
        client: IpAddr,
    ) -> Result<AttemptGuard, Duration> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Registered before asking, so an attempt ending in between
            // still wakes this one.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.limiter().begin(username, client, Instant::now()) {
                Ok(()) => {
                    return Ok(AttemptGuard {
                        gate: Arc::clone(self),
                        username: username.to_owned(),
                        client,
                        ended: false,
                    });
                }
                Err(Refusal::Limited(wait)) => return Err(wait),
                Err(Refusal::Busy) => {}
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(RETRY_SOON);
            }
        }
    }
}

/// One attempt in flight. Dropped without a verdict (an error, or the
/// request went away), it counts for nothing.
pub(crate) struct AttemptGuard {
    gate: Arc<LoginGate>,
    username: String,
    client: IpAddr,
    ended: bool,
}

impl AttemptGuard {
    /// The password was wrong (or the user unknown): count a failure.
    pub(crate) fn failed(mut self) {
        self.gate
            .limiter()
            .failed(&self.username, self.client, Instant::now());
        self.end();
    }

    /// The password was right: nothing is counted.
    pub(crate) fn succeeded(mut self) {
        self.gate.limiter().succeeded(&self.username, self.client);
        self.end();
    }

    fn end(&mut self) {
        self.ended = true;
        self.gate.settled.notify_waiters();
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.gate.limiter().abandoned(&self.username, self.client);
            self.end();
        }
    }
}
