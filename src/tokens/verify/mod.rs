//! Verification of our own tokens and of every trusted issuer's, behind one
//! API: [`Verifier::verify`].
//!
//! A token goes through, in order: the size limit; a JOSE header parsed
//! here (exactly three segments, `alg` matched case-sensitively against an
//! allowlist of asymmetric algorithms, no `crit`, `jku`/`x5u`/`jwk`/`x5c`
//! ignored); a typed parse of the claims; routing by the unverified `iss`
//! (exact match) to one issuer, whose keys alone may verify it; a key chosen
//! by `kid` and pinned to its own `alg`; `jsonwebtoken::decode` restricted to
//! that one algorithm (signature, `exp`, `nbf`, `iss`, `aud`); then the
//! issuer's rules (token use, app client, `iat`, groups, scopes).
//!
//! Our own keys come from the key ring with no HTTP; a remote issuer's from
//! a JWKS cache refreshed in the background (`jwks.rs`).

mod cache;
mod claims;
mod config;
mod error;
mod header;
mod issuer;
#[cfg(feature = "remote-jwks")]
mod jwks;
mod keyset;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde::de::IgnoredAny;

pub use claims::Claims;
pub use config::{CognitoTrust, MAX_LEEWAY, OidcTrust, TokenUseSetting, TrustConfig, VerifyConfig};
pub use error::{VerifierSetupError, VerifyError, VerifyErrorKind};

use claims::RawClaims;
use issuer::Issuer;
use keyset::Lookup;

/// What a token is for, in Cognito's terms (`token_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    /// An access token: names the app client in `client_id`.
    Access,
    /// An ID token: names the app client in `aud`.
    Id,
}

/// Where a verified token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IssuerKind {
    /// Minted by this bridge.
    Own,
    /// A Cognito user pool.
    Cognito,
    /// An OIDC issuer.
    Oidc,
}

/// Keys held in this process (our key ring): read on every verification,
/// decoded again only when `generation` changes.
pub trait LocalKeys: Send + Sync {
    /// The public keys of every live stage.
    fn jwks(&self) -> Arc<JwkSet>;
    /// Changes whenever the key set changes (rotation).
    fn generation(&self) -> u64;
}

/// A fixed key set, for tests and for services that verify with keys they
/// were given rather than a key ring.
#[derive(Debug, Clone)]
pub struct StaticKeys(Arc<JwkSet>);

impl StaticKeys {
    /// Wrap a JWK set (public keys; private members are ignored).
    pub fn new(jwks: JwkSet) -> Self {
        Self(Arc::new(jwks))
    }
}

impl LocalKeys for StaticKeys {
    fn jwks(&self) -> Arc<JwkSet> {
        Arc::clone(&self.0)
    }
    fn generation(&self) -> u64 {
        1
    }
}

/// This bridge as an issuer of the tokens it verifies.
#[derive(Clone)]
pub struct OwnIssuer {
    /// Our `iss` (the public URL).
    pub issuer: String,
    /// The app client our tokens name (`client_id` / `aud`).
    pub client_id: String,
    /// Our public keys.
    pub keys: Arc<dyn LocalKeys>,
}

/// A token that passed every check.
#[derive(Clone)]
pub struct VerifiedToken {
    /// The configured name of the issuer (`self` for our own tokens).
    pub issuer_name: Arc<str>,
    /// What kind of issuer.
    pub issuer_kind: IssuerKind,
    /// The algorithm that verified it.
    pub alg: Algorithm,
    /// The key that verified it.
    pub kid: Option<String>,
    /// The typed claims.
    pub claims: Claims,
    payload: Vec<u8>,
}

impl fmt::Debug for OwnIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnIssuer")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for VerifiedToken {
    // Without the raw payload: the typed claims say what a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("issuer_name", &self.issuer_name)
            .field("issuer_kind", &self.issuer_kind)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl VerifiedToken {
    /// Every claim as sent (for `token verify` and custom claims).
    pub fn raw_claims(&self) -> serde_json::Map<String, serde_json::Value> {
        // The payload already parsed as a JSON object during verification.
        serde_json::from_slice(&self.payload).unwrap_or_default()
    }
}

/// Verifies tokens of our own issuer and of every trusted issuer. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    max_token_bytes: usize,
    cache: cache::TokenCache,
    issuers: HashMap<String, Issuer>,
}

impl Verifier {
    /// Build a verifier. Remote keys are fetched on first use; prefer
    /// [`Verifier::start`] in a service, which fetches them in the background.
    ///
    /// ```no_run
    /// use session_bridge::tokens::verify::{TrustConfig, Verifier, VerifyConfig};
    /// # async fn f(trust: Vec<TrustConfig>, token: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = Verifier::start(&VerifyConfig::default(), &trust, None).await?;
    /// match verifier.verify(token).await {
    ///     Ok(t) => println!("hello {}", t.claims.sub),
    ///     Err(e) => println!("rejected: {}", e.kind()),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn new(
        cfg: &VerifyConfig,
        trust: &[TrustConfig],
        own: Option<OwnIssuer>,
    ) -> Result<Self, VerifierSetupError> {
        let mut problems = crate::problems::Problems::default();
        cfg.validate("tokens.verify", &mut problems);
        TrustConfig::validate_all(trust, "tokens.trust", &mut problems);
        if let Some(p) = problems.into_vec().into_iter().next() {
            return Err(VerifierSetupError::InvalidConfig {
                key: p.key,
                message: p.message,
            });
        }
        let mut issuers = HashMap::new();
        if let Some(own) = own {
            let (iss, issuer) = Issuer::own(own, cfg);
            issuers.insert(iss, issuer);
        }
        #[cfg(feature = "remote-jwks")]
        if !trust.is_empty() {
            // Building the TLS client loads root certificates: only when needed.
            let client = jwks::http_client(cfg).map_err(VerifierSetupError::HttpClient)?;
            for (index, t) in trust.iter().enumerate() {
                let (iss, issuer) = Issuer::remote(t, index, client.clone(), cfg)?;
                if issuers.contains_key(&iss) {
                    return Err(VerifierSetupError::InvalidConfig {
                        key: format!("tokens.trust[{index}]"),
                        message: "names our own issuer".to_owned(),
                    });
                }
                issuers.insert(iss, issuer);
            }
        }
        #[cfg(not(feature = "remote-jwks"))]
        if !trust.is_empty() {
            return Err(VerifierSetupError::InvalidConfig {
                key: "tokens.trust".to_owned(),
                message: "trusting other issuers needs session-bridge's `remote-jwks` feature"
                    .to_owned(),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                max_token_bytes: cfg.max_token_bytes,
                cache: cache::TokenCache::new(cfg.cache_bytes),
                issuers,
            }),
        })
    }

    /// Build a verifier and start fetching every remote issuer's keys in the
    /// background. Returns at once, even when an IdP is down: its tokens are
    /// refused with `issuer_unavailable` until its keys arrive.
    pub async fn start(
        cfg: &VerifyConfig,
        trust: &[TrustConfig],
        own: Option<OwnIssuer>,
    ) -> Result<Self, VerifierSetupError> {
        let verifier = Self::new(cfg, trust, own)?;
        #[cfg(feature = "remote-jwks")]
        for cache in verifier
            .inner
            .issuers
            .values()
            .filter_map(Issuer::remote_cache)
        {
            cache.spawn_refresher();
        }
        Ok(verifier)
    }

    /// Wait until every remote issuer's keys were fetched once (readiness
    /// probes, tests). Bound it with a timeout: an IdP may be down.
    pub async fn wait_ready(&self) {
        #[cfg(feature = "remote-jwks")]
        for cache in self.inner.issuers.values().filter_map(Issuer::remote_cache) {
            cache.wait_ready().await;
        }
    }

    /// How many times the JWKS of `issuer` (its `iss` or configured name)
    /// was fetched; `None` for an unknown or local issuer.
    pub fn jwks_fetch_count(&self, issuer: &str) -> Option<u64> {
        let found = self
            .inner
            .issuers
            .get(issuer)
            .or_else(|| self.inner.issuers.values().find(|i| &*i.name == issuer))?;
        #[cfg(feature = "remote-jwks")]
        return found.remote_cache().map(|cache| cache.fetch_count());
        #[cfg(not(feature = "remote-jwks"))]
        {
            let _ = found;
            None
        }
    }

    /// Verify a token of any accepted use.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        self.check(token, None).await
    }

    /// Verify a token that must be of `token_use` (e.g. an API accepting
    /// access tokens only): another use is `wrong_token_use`.
    pub async fn verify_as(
        &self,
        token: &str,
        token_use: TokenUse,
    ) -> Result<VerifiedToken, VerifyError> {
        self.check(token, Some(token_use)).await
    }

    async fn check(
        &self,
        token: &str,
        expect: Option<TokenUse>,
    ) -> Result<VerifiedToken, VerifyError> {
        let now = now();
        // Hash only what could be a token at all: the size limit comes first.
        let key =
            (token.len() <= self.inner.max_token_bytes).then(|| cache::TokenCache::key(token));
        if let Some(key) = &key
            && let Some(hit) = self.inner.cache.get(key, now, expect, |iss| {
                self.inner
                    .issuers
                    .get(iss)
                    .and_then(Issuer::current_generation)
            })
        {
            return Ok(hit);
        }
        let parsed = header::parse(token, self.inner.max_token_bytes)?;
        let raw = RawClaims::parse(&parsed.payload)?;
        let iss = raw
            .iss
            .as_deref()
            .ok_or(VerifyError::missing("iss is required"))?;
        let Some(issuer) = self.inner.issuers.get(iss) else {
            return Err(self.untrusted(iss));
        };
        if !issuer.allow.contains(&parsed.alg) {
            return Err(not_allowed());
        }
        let kid = parsed.kid.as_deref();
        let snapshot = issuer.snapshot(kid, parsed.alg).await?;
        let entry = match snapshot.keys.find(kid, parsed.alg) {
            Lookup::Found(entry) => entry,
            Lookup::AlgorithmMismatch => return Err(not_allowed()),
            Lookup::Missing => {
                return Err(VerifyError::new(
                    VerifyErrorKind::UnknownKey,
                    "no key of the issuer has this kid",
                ));
            }
        };
        let validation = issuer.validation(parsed.alg).ok_or_else(not_allowed)?;
        jsonwebtoken::decode::<IgnoredAny>(token, &entry.key, validation)?;
        let claims = issuer.rules.check(raw, parsed.at_jwt, expect, now)?;
        let verified = VerifiedToken {
            issuer_name: Arc::clone(&issuer.name),
            issuer_kind: issuer.kind,
            alg: parsed.alg,
            kid: parsed.kid,
            claims,
            payload: parsed.payload,
        };
        if let Some(key) = key {
            self.inner.cache.insert(key, &verified, snapshot.generation);
        }
        Ok(verified)
    }
}

impl Verifier {
    /// `unknown_issuer`, or `wrong_issuer` when `iss` is a near miss of a
    /// trusted issuer (case, trailing slash): most likely a typo in the
    /// configuration, which the operator should see as such.
    fn untrusted(&self, iss: &str) -> VerifyError {
        let near = |a: &str, b: &str| {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(b.trim_end_matches('/'))
        };
        if self.inner.issuers.keys().any(|known| near(known, iss)) {
            VerifyError::new(
                VerifyErrorKind::WrongIssuer,
                "iss differs from a trusted issuer only in case or a trailing slash",
            )
        } else {
            let mut known: Vec<&str> = self.inner.issuers.keys().map(String::as_str).collect();
            known.sort_unstable();
            VerifyError::new(
                VerifyErrorKind::UnknownIssuer,
                "iss is not a trusted issuer",
            )
            .with_expected_issuers(known.join(", "))
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self
                    .inner
                    .issuers
                    .values()
                    .map(|i| &*i.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn not_allowed() -> VerifyError {
    VerifyError::new(
        VerifyErrorKind::AlgorithmNotAllowed,
        "algorithm not allowed for this issuer or key",
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Fuzzing entry point (`tests/fuzz`), not an API: split and pre-check an
/// untrusted token and parse its claims, as verification does before any
/// key is looked up. Returns whether both parsed.
#[doc(hidden)]
pub fn fuzz_parse_untrusted(token: &str) -> bool {
    header::parse(token, VerifyConfig::default().max_token_bytes)
        .and_then(|parsed| claims::RawClaims::parse(&parsed.payload))
        .is_ok()
}
