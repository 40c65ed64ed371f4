//! The remote JWKS cache of one trusted issuer: fetched in the background,
//! refreshed on a timer, refetched on an unknown `kid` at most once per
//! cooldown, and never emptied by a failed fetch.
//!
//! At most one fetch runs at a time ("single flight"): it runs in its own
//! task, bounded as a whole by `http_timeout`, and every miss that arrives
//! meanwhile waits for it and takes its result instead of queueing a fetch
//! of its own. The cooldown runs from the *end* of a fetch, so a fetch slower
//! than the cooldown cannot be followed at once by another one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use tokio::sync::watch;
use url::Url;

use super::config::{VerifyConfig, is_loopback};
use super::keyset::KeySet;

/// Where the keys are found.
#[derive(Debug, Clone)]
pub(crate) enum JwksLocation {
    /// A JWKS URL (Cognito, or a configured override).
    Direct(Url),
    /// An OIDC issuer: its discovery document names `jwks_uri`.
    Discovery(Url),
}

pub(crate) use super::keyset::Snapshot;

struct FetchState {
    /// When the last fetch ended: the cooldown runs from there.
    last_end: Option<Instant>,
    /// Whether the last finished fetch succeeded.
    last_ok: bool,
    /// A fetch is running; misses wait for it instead of starting another.
    in_flight: bool,
    /// The `jwks_uri` from discovery, reused until a fetch through it fails.
    jwks_uri: Option<Url>,
}

/// Why one fetch failed (logged; never reaches a client).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response larger than max_jwks_bytes")]
    TooLarge,
    #[error("response is not the expected JSON")]
    Json(#[source] serde_json::Error),
    #[error("discovery document names another issuer")]
    IssuerMismatch,
    #[error("jwks_uri is not an https (or loopback) URL")]
    BadJwksUri,
    #[error("no usable signing key in the JWKS")]
    NoUsableKeys,
    #[error("no answer within http_timeout")]
    TimedOut,
}

pub(crate) struct JwksCache {
    name: Arc<str>,
    issuer: String,
    location: JwksLocation,
    allow: Vec<Algorithm>,
    client: reqwest::Client,
    max_bytes: usize,
    cooldown: Duration,
    refresh: Duration,
    timeout: Duration,
    snapshot: ArcSwapOption<Snapshot>,
    fetches: AtomicU64,
    state: StdMutex<FetchState>,
    /// Finished fetches so far; waiters watch it. Only changed with `state`
    /// locked, so a waiter that read it under the lock cannot miss its fetch.
    finished: watch::Sender<u64>,
    ready: watch::Sender<u64>,
    refresher: StdMutex<Option<tokio::task::AbortHandle>>,
}

impl JwksCache {
    pub(crate) fn new(
        name: Arc<str>,
        issuer: String,
        location: JwksLocation,
        allow: Vec<Algorithm>,
        client: reqwest::Client,
        cfg: &VerifyConfig,
    ) -> Self {
        Self {
            name,
            issuer,
            location,
            allow,
            client,
            max_bytes: cfg.max_jwks_bytes,
            cooldown: cfg.jwks_cooldown,
            refresh: cfg.jwks_refresh,
            timeout: cfg.http_timeout,
            snapshot: ArcSwapOption::empty(),
            fetches: AtomicU64::new(0),
            state: StdMutex::new(FetchState {
                last_end: None,
                last_ok: false,
                in_flight: false,
                jwks_uri: None,
            }),
            finished: watch::channel(0).0,
            ready: watch::channel(0).0,
            refresher: StdMutex::new(None),
        }
    }

    /// The keys of the last successful fetch, if any.
    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    /// Fetch attempts so far (tests and metrics).
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Wait until a first fetch succeeded.
    pub(crate) async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // Err only when the sender is gone, i.e. never while `self` lives.
        let _ = rx.wait_for(|g| *g > 0).await;
    }

    /// A token named a key that `seen` (the generation the caller looked
    /// at; 0 for none) does not have. Refetch unless another fetch already
    /// succeeded since, or the last one ended within the cooldown; a fetch
    /// already running is joined, never repeated. Waits at most about
    /// `http_timeout`.
    pub(crate) async fn after_miss(self: &Arc<Self>, seen: u64) -> Option<Arc<Snapshot>> {
        let wait = {
            let mut state = self.state();
            let current = self.current();
            if current.as_ref().map_or(0, |s| s.generation) != seen {
                return current;
            }
            if !state.in_flight && self.cooling(&state) {
                return current;
            }
            self.join_or_start(&mut state)
        };
        wait.await;
        self.current()
    }

    /// Scheduled fetch; skipped when a fetch ended within the cooldown.
    /// Returns whether keys are fresh.
    async fn scheduled(self: &Arc<Self>) -> bool {
        let wait = {
            let mut state = self.state();
            if !state.in_flight && self.cooling(&state) {
                return self.current().is_some();
            }
            self.join_or_start(&mut state)
        };
        wait.await;
        self.state().last_ok
    }

    fn state(&self) -> MutexGuard<'_, FetchState> {
        // Every field is assigned whole: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cooling(&self, state: &FetchState) -> bool {
        state.last_end.is_some_and(|t| t.elapsed() < self.cooldown)
    }

    /// Start a fetch unless one runs, and return a future that resolves
    /// when that fetch has finished. Called with `state` locked.
    fn join_or_start(
        self: &Arc<Self>,
        state: &mut FetchState,
    ) -> impl Future<Output = ()> + Send + 'static {
        if !state.in_flight {
            state.in_flight = true;
            self.fetches.fetch_add(1, Ordering::Relaxed);
            let flight = Flight(Arc::clone(self));
            let jwks_uri = state.jwks_uri.clone();
            // Its own task: a caller that gives up (a client that hangs up)
            // does not cancel the fetch the others wait for.
            tokio::spawn(async move {
                let result = tokio::time::timeout(flight.0.timeout, flight.0.fetch(jwks_uri))
                    .await
                    .unwrap_or((None, Err(FetchError::TimedOut)));
                flight.finish(result);
            });
        }
        let target = *self.finished.borrow() + 1;
        let mut rx = self.finished.subscribe();
        async move {
            // Err only when the cache is gone, and then nobody waits.
            let _ = rx.wait_for(|n| *n >= target).await;
        }
    }

    /// Start the background refresher: a first fetch now, then one every
    /// `jwks_refresh`, retrying sooner (backing off from the cooldown)
    /// while fetches fail. It stops when the cache is dropped.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let Some(cache) = weak.upgrade() else { return };
                let delay = if cache.scheduled().await {
                    failures = 0;
                    cache.refresh
                } else {
                    failures = failures.saturating_add(1);
                    cache
                        .cooldown
                        .saturating_mul(1 << failures.min(6))
                        .min(cache.refresh)
                };
                drop(cache);
                tokio::time::sleep(delay).await;
            }
        });
        if let Ok(mut slot) = self.refresher.lock()
            && let Some(old) = slot.replace(task.abort_handle())
        {
            old.abort();
        }
    }

    /// One fetch: discovery when needed, then the keys. Returns the
    /// `jwks_uri` to use next time along with the outcome.
    async fn fetch(&self, jwks_uri: Option<Url>) -> (Option<Url>, Result<(), FetchError>) {
        let url = match (&self.location, jwks_uri) {
            (JwksLocation::Direct(url), _) => url.clone(),
            (JwksLocation::Discovery(_), Some(uri)) => uri,
            (JwksLocation::Discovery(discovery), None) => match self.discover(discovery).await {
                Ok(uri) => uri,
                Err(e) => return (None, Err(e)),
            },
        };
        let keys = match self.fetch_keys(&url).await {
            Ok(keys) => keys,
            // The IdP may have moved its keys: ask discovery again next time.
            Err(e) => return (None, Err(e)),
        };
        let generation = self.current().map_or(0, |s| s.generation) + 1;
        tracing::debug!(issuer = %self.name, keys = keys.len(), generation, "JWKS fetched");
        self.snapshot
            .store(Some(Arc::new(Snapshot { generation, keys })));
        self.ready.send_replace(generation);
        (Some(url), Ok(()))
    }

    async fn discover(&self, discovery: &Url) -> Result<Url, FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let doc: Discovery =
            serde_json::from_slice(&self.get(discovery).await?).map_err(FetchError::Json)?;
        // OIDC Discovery §4.3: the document must name exactly this issuer,
        // or another party could have us trust its keys.
        if doc.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch);
        }
        let uri = Url::parse(&doc.jwks_uri).map_err(|_| FetchError::BadJwksUri)?;
        if uri.scheme() == "https" || (uri.scheme() == "http" && is_loopback(&uri)) {
            Ok(uri)
        } else {
            Err(FetchError::BadJwksUri)
        }
    }

    async fn fetch_keys(&self, url: &Url) -> Result<KeySet, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Value>,
        }
        let doc: Jwks = serde_json::from_slice(&self.get(url).await?).map_err(FetchError::Json)?;
        // Parsed one by one: a key of a type we do not know must not hide the others.
        let jwks: Vec<Jwk> = doc
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        let keys = KeySet::build(&jwks, &self.allow, &self.name);
        if keys.len() == 0 {
            return Err(FetchError::NoUsableKeys);
        }
        Ok(keys)
    }

    /// GET with the size limit enforced while streaming, so a huge or
    /// endless body costs at most `max_bytes` of memory.
    async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let mut resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(FetchError::Http)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|l| l > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(FetchError::Http)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl Drop for JwksCache {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.refresher.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

/// The one running fetch. Finishing it (also when its task is cancelled or
/// panics, through `Drop`) wakes every waiter, so no waiter hangs.
struct Flight(Arc<JwksCache>);

impl Flight {
    fn finish(self, (jwks_uri, result): (Option<Url>, Result<(), FetchError>)) {
        let cache = &self.0;
        if let Err(e) = &result {
            tracing::warn!(issuer = %cache.name, error = %e, source = ?std::error::Error::source(e), "JWKS fetch failed; keeping the old keys");
        }
        let mut state = cache.state();
        state.jwks_uri = jwks_uri;
        state.last_ok = result.is_ok();
        // `self` drops after the lock is released: `Drop` ends the flight.
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let cache = &self.0;
        let mut state = cache.state();
        state.in_flight = false;
        state.last_end = Some(Instant::now());
        cache.finished.send_modify(|n| *n += 1);
    }
}

/// The HTTP client for every issuer's keys: rustls, timeouts, no redirects
/// (a redirect could send us to keys the configuration never named).
pub(crate) fn http_client(cfg: &VerifyConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(cfg.http_timeout)
        .connect_timeout(cfg.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("session-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
}
