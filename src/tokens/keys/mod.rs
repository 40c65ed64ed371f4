//! The signing key ring: `next` / `current` / `previous` keys, stored in one
//! file, shared by a running service through an `Arc<KeyRing>`.
//!
//! Tokens are signed with `current`. All three stages are published in the
//! JWKS, so verifiers learn the `next` key before it signs anything and keep
//! the `previous` key while tokens it signed are still alive. A rotation
//! (`previous ← current ← next ← new`) therefore never breaks a live token
//! as long as verifiers refresh their JWKS more often than keys rotate and
//! the previous key is retired only after the longest token lifetime.
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_bridge::tokens::keys::KeyError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session_bridge::tokens::config::TokensConfig;
//! use session_bridge::tokens::keys::KeyRing;
//!
//! let cfg = TokensConfig::default();
//! let (ring, generated) = KeyRing::load_or_generate(&cfg, ".data".as_ref())?;
//! if generated {
//!     eprintln!("generated development keys at {}", ring.path().display());
//! }
//! let ring = Arc::new(ring);
//! ring.spawn_reload_task(cfg.reload_interval); // picks up `keys rotate`
//! # Ok(()) }
//! ```

mod error;
mod file;
mod signing_key;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

pub use error::KeyError;
pub use signing_key::{SigningKey, thumbprint};

use crate::tokens::config::{SigningAlgorithm, TokensConfig};

/// Environment variable naming the key ring file (the `*_FILE` convention
/// for mounted secrets); wins over `tokens.keys_file`.
pub const KEYS_FILE_ENV: &str = "SESSION_BRIDGE_KEYS_FILE";

/// The place of a key in the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Published, not yet signing: becomes `current` at the next rotation.
    Next,
    /// Signs every new token.
    Current,
    /// Signed tokens that may still be alive; dropped by `retire`.
    Previous,
}

impl Stage {
    /// Lower-case name, as in the key file and `keys list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Previous => "previous",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Public facts about one key, for listings and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Where the key is in the rotation.
    pub stage: Stage,
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// When it was generated.
    pub created_at: OffsetDateTime,
}

/// The keys of each stage.
#[derive(Clone)]
pub(crate) struct Stages {
    next: Option<Arc<SigningKey>>,
    current: Arc<SigningKey>,
    previous: Option<Arc<SigningKey>>,
}

impl Stages {
    fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        Ok(Self {
            next: Some(Arc::new(SigningKey::generate(algorithm)?)),
            current: Arc::new(SigningKey::generate(algorithm)?),
            previous: None,
        })
    }

    /// Live keys, `current` first: a naive verifier that takes the first
    /// key of the set then picks the one that signs.
    fn iter(&self) -> impl Iterator<Item = (Stage, &Arc<SigningKey>)> {
        std::iter::once((Stage::Current, &self.current))
            .chain(self.next.iter().map(|k| (Stage::Next, k)))
            .chain(self.previous.iter().map(|k| (Stage::Previous, k)))
    }

    fn kids(&self) -> Vec<(Stage, &str)> {
        self.iter().map(|(stage, key)| (stage, key.kid())).collect()
    }
}

/// One consistent view of the ring: swapped whole, so readers never see a
/// JWKS that disagrees with the signing key.
struct RingState {
    stages: Stages,
    generation: u64,
    jwks: Arc<JwkSet>,
    file_digest: file::FileDigest,
}

impl RingState {
    fn new(stages: Stages, generation: u64, file_digest: file::FileDigest) -> Self {
        let jwks = JwkSet {
            keys: stages
                .iter()
                .map(|(_, key)| key.public_jwk().clone())
                .collect(),
        };
        Self {
            stages,
            generation,
            jwks: Arc::new(jwks),
            file_digest,
        }
    }
}

/// The service's signing keys. All methods take `&self`, so one
/// `Arc<KeyRing>` is shared by the minter, the JWKS route, the verifier
/// and the reload task.
pub struct KeyRing {
    path: PathBuf,
    /// Whether the ring lives in `path` (`false`: process memory only).
    persistent: bool,
    /// Algorithm of keys generated from now on.
    algorithm: SigningAlgorithm,
    state: ArcSwap<RingState>,
    /// Serializes read-modify-write changes (rotate, retire, reload) within
    /// the process; readers never take it.
    writer: Mutex<()>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load();
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .field("generation", &state.generation)
            .field("kids", &state.stages.kids())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Where the key ring of this configuration lives:
    /// `$SESSION_BRIDGE_KEYS_FILE`, else `tokens.keys_file`, else
    /// `<data_dir>/keys.json`.
    pub fn path_for(cfg: &TokensConfig, data_dir: &Path) -> PathBuf {
        match std::env::var_os(KEYS_FILE_ENV).filter(|v| !v.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => cfg
                .keys_file
                .clone()
                .unwrap_or_else(|| data_dir.join("keys.json")),
        }
    }

    /// Load the key ring of this configuration (see [`Self::path_for`]),
    /// generating and writing one when the file does not exist and
    /// `tokens.generate_keys` allows it. The flag is `true` when keys were
    /// generated, so the service can warn that it runs on development keys.
    pub fn load_or_generate(
        cfg: &TokensConfig,
        data_dir: &Path,
    ) -> Result<(KeyRing, bool), KeyError> {
        Self::open(
            Self::path_for(cfg, data_dir),
            cfg.algorithm,
            cfg.generate_keys,
        )
    }

    /// Load the key ring at `path`; when it does not exist, generate one
    /// with `algorithm` keys if `generate` is set, else fail with
    /// [`KeyError::Missing`]. The flag tells whether keys were generated.
    pub fn open(
        path: impl Into<PathBuf>,
        algorithm: SigningAlgorithm,
        generate: bool,
    ) -> Result<(KeyRing, bool), KeyError> {
        let path = path.into();
        match file::read(&path)? {
            Some(bytes) => {
                let stages = file::parse(&path, &bytes)?;
                Ok((
                    Self::with_state(
                        path,
                        algorithm,
                        RingState::new(stages, 1, file::digest(&bytes)),
                    ),
                    false,
                ))
            }
            None if generate => Ok((Self::create(path, algorithm)?, true)),
            None => Err(KeyError::Missing { path }),
        }
    }

    /// Generate a fresh key ring (`current` and `next`) and write it to
    /// `path`. Refuses to replace an existing file unless `overwrite`:
    /// replacing the keys invalidates every token they signed.
    pub fn generate(
        path: impl Into<PathBuf>,
        algorithm: SigningAlgorithm,
        overwrite: bool,
    ) -> Result<KeyRing, KeyError> {
        let path = path.into();
        if !overwrite && file::read(&path)?.is_some() {
            return Err(KeyError::AlreadyExists { path });
        }
        Self::create(path, algorithm)
    }

    /// A fresh key ring (`current` and `next`) kept in process memory only:
    /// for tests and single-instance library use. Tokens it signed stop
    /// verifying when the process ends; [`rotate`](Self::rotate) works,
    /// [`reload`](Self::reload) has nothing to read.
    ///
    /// ```
    /// use session_bridge::tokens::config::SigningAlgorithm;
    /// use session_bridge::tokens::keys::KeyRing;
    ///
    /// let keys = KeyRing::in_memory(SigningAlgorithm::ES256)?;
    /// assert_eq!(keys.keys().len(), 2);
    /// # Ok::<(), session_bridge::tokens::keys::KeyError>(())
    /// ```
    pub fn in_memory(algorithm: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let stages = Stages::generate(algorithm)?;
        let mut ring = Self::with_state(
            PathBuf::new(),
            algorithm,
            RingState::new(stages, 1, [0; 32]),
        );
        ring.persistent = false;
        Ok(ring)
    }

    fn create(path: PathBuf, algorithm: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let stages = Stages::generate(algorithm)?;
        let bytes = file::encode(&stages)?;
        file::write_atomic(&path, &bytes)?;
        Ok(Self::with_state(
            path,
            algorithm,
            RingState::new(stages, 1, file::digest(&bytes)),
        ))
    }

    fn with_state(path: PathBuf, algorithm: SigningAlgorithm, state: RingState) -> Self {
        Self {
            path,
            persistent: true,
            algorithm,
            state: ArcSwap::from_pointee(state),
            writer: Mutex::new(()),
        }
    }

    /// The key ring file (empty for an [in-memory](Self::in_memory) ring).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key that signs new tokens (`current`).
    pub fn signing_key(&self) -> Arc<SigningKey> {
        Arc::clone(&self.state.load().stages.current)
    }

    /// Public keys of all live stages, each with `kid`, `alg` and
    /// `use: sig`. Built once per change; this is a reference-count bump.
    pub fn jwks(&self) -> Arc<JwkSet> {
        Arc::clone(&self.state.load().jwks)
    }

    /// Increments whenever the set of keys changes (rotate, retire, a
    /// reload that found different keys); caches keyed on it stay valid
    /// until it moves. Starts at 1 in every process.
    pub fn generation(&self) -> u64 {
        self.state.load().generation
    }

    /// Stage, `kid`, algorithm and age of every live key, `current` first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let state = self.state.load();
        state
            .stages
            .iter()
            .map(|(stage, key)| KeyInfo {
                stage,
                kid: key.kid().to_owned(),
                algorithm: key.algorithm(),
                created_at: key.created_at(),
            })
            .collect()
    }

    /// `previous ← current ← next ← new key` (of the configured algorithm),
    /// written to the file before it takes effect here.
    pub fn rotate(&self) -> Result<(), KeyError> {
        self.change(|stages| {
            let new = Arc::new(SigningKey::generate(self.algorithm)?);
            let current = match stages.next.take() {
                Some(next) => next,
                // A hand-written file may lack `next`; then the new key has to sign at once.
                None => Arc::new(SigningKey::generate(self.algorithm)?),
            };
            stages.previous = Some(std::mem::replace(&mut stages.current, current));
            stages.next = Some(new);
            Ok(true)
        })
        .map(drop)
    }

    /// Drop the `previous` key: tokens it signed stop verifying. Returns
    /// `false` (and changes nothing) when there was no previous key.
    pub fn retire(&self) -> Result<bool, KeyError> {
        self.change(|stages| Ok(stages.previous.take().is_some()))
    }

    /// Apply `edit` to the stages; when it reports a change, write the
    /// file, then publish the new state.
    fn change(
        &self,
        edit: impl FnOnce(&mut Stages) -> Result<bool, KeyError>,
    ) -> Result<bool, KeyError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.state.load_full();
        // Start from the file when someone else (an operator's CLI) changed
        // it since we read it, so their change is built on, not overwritten.
        let on_disk = if self.persistent {
            file::read(&self.path)?
        } else {
            None
        };
        let mut stages = match on_disk {
            Some(bytes) if file::digest(&bytes) != old.file_digest => {
                file::parse(&self.path, &bytes)?
            }
            _ => old.stages.clone(),
        };
        if !edit(&mut stages)? {
            return Ok(false);
        }
        if !self.persistent {
            self.state.store(Arc::new(RingState::new(
                stages,
                old.generation + 1,
                old.file_digest,
            )));
            return Ok(true);
        }
        let bytes = file::encode(&stages)?;
        file::write_atomic(&self.path, &bytes)?;
        self.state.store(Arc::new(RingState::new(
            stages,
            old.generation + 1,
            file::digest(&bytes),
        )));
        Ok(true)
    }

    /// Re-read the file. Returns `true` when it holds different keys (the
    /// generation then moves). On a missing or bad file the current keys
    /// stay in use and the error is returned.
    pub fn reload(&self) -> Result<bool, KeyError> {
        if !self.persistent {
            return Ok(false);
        }
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = file::read(&self.path)?.ok_or_else(|| KeyError::Missing {
            path: self.path.clone(),
        })?;
        let digest = file::digest(&bytes);
        let old = self.state.load_full();
        if digest == old.file_digest {
            return Ok(false);
        }
        let stages = file::parse(&self.path, &bytes)?;
        let changed = stages.kids() != old.stages.kids();
        let generation = if changed {
            old.generation + 1
        } else {
            old.generation
        };
        // Also stored when only the formatting changed, to skip parsing next time.
        self.state
            .store(Arc::new(RingState::new(stages, generation, digest)));
        Ok(changed)
    }

    /// Reload the file every `every` (at least one second) on the tokio
    /// runtime, logging changes and failures. The task ends when the last
    /// other `Arc` of the ring is dropped.
    pub fn spawn_reload_task(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let ring = Arc::downgrade(self);
        let every = every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(ring) = ring.upgrade() else { return };
                // File I/O and RSA key checks: keep them off the async workers.
                let result = tokio::task::spawn_blocking(move || {
                    let result = ring.reload();
                    (result, ring)
                })
                .await;
                match result {
                    Ok((Ok(true), ring)) => tracing::info!(
                        path = %ring.path.display(),
                        generation = ring.generation(),
                        kids = ?ring.state.load().stages.kids(),
                        "key ring changed on disk; now signing with the new current key"
                    ),
                    Ok((Ok(false), _)) => {}
                    Ok((Err(err), ring)) => tracing::warn!(
                        path = %ring.path.display(),
                        error = &err as &dyn std::error::Error,
                        "cannot reload the key ring; keeping the keys in use"
                    ),
                    Err(err) => tracing::warn!(error = %err, "key ring reload task failed"),
                }
            }
        })
    }
}

/// The verifier reads our own public keys straight from the ring: no HTTP,
/// and its decoded keys are rebuilt only when the generation moves.
impl crate::tokens::verify::LocalKeys for KeyRing {
    fn jwks(&self) -> Arc<JwkSet> {
        KeyRing::jwks(self)
    }

    fn generation(&self) -> u64 {
        KeyRing::generation(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
