//! Tokens seen before: a token that passed every check is remembered under
//! the SHA-256 of its bytes, so the next request with the same token skips
//! the signature check (the bulk of a verification's cost).
//!
//! An entry is served only while the token has not expired (no leeway: an
//! entry never outlives its `exp`), only while the key set that verified it
//! is still the issuer's current one (a rotation, a retired key or a JWKS
//! refetch makes every entry of that issuer verify again), and only for the
//! token use it was checked for. Revocation is not cached here: callers
//! check it after verification, every time.
//!
//! Bounded by weight: each entry counts about [`ENTRY_OVERHEAD`] bytes plus
//! twice its payload (the payload and the claims parsed from it), and the
//! cache holds at most `[tokens.verify] cache_bytes` of them (default
//! 16 MiB: about 17 000 typical access tokens of ~300 payload bytes).

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::{TokenUse, VerifiedToken};

/// Fixed cost of one entry besides its payload: the key, the `Arc`, the
/// typed claims' own allocations, the cache's bookkeeping.
pub(crate) const ENTRY_OVERHEAD: u64 = 384;

/// A verified token and the key generation that verified it.
pub(crate) struct Cached {
    pub(crate) token: VerifiedToken,
    /// The issuer's key generation at verification time.
    pub(crate) generation: u64,
}

#[derive(Clone)]
struct Weight;

impl Weighter<[u8; 32], Arc<Cached>> for Weight {
    fn weight(&self, _: &[u8; 32], entry: &Arc<Cached>) -> u64 {
        let payload = u64::try_from(entry.token.payload.len()).unwrap_or(u64::MAX / 4);
        ENTRY_OVERHEAD + 2 * payload
    }
}

/// The cache; a no-op with zero bytes.
pub(crate) struct TokenCache {
    cache: Option<Cache<[u8; 32], Arc<Cached>, Weight>>,
}

impl TokenCache {
    pub(crate) fn new(bytes: u64) -> Self {
        let cache = (bytes > 0).then(|| {
            let items = usize::try_from(bytes / 1024).unwrap_or(usize::MAX).max(16);
            Cache::with_weighter(items, bytes, Weight)
        });
        Self { cache }
    }

    /// The key of `token`.
    pub(crate) fn key(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    /// The verified token under `key`, if it may still be served: not
    /// expired at `now`, verified by the issuer's current keys
    /// (`generation` tells which they are), of the use asked for.
    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        now: i64,
        expect: Option<TokenUse>,
        generation: impl FnOnce(&str) -> Option<u64>,
    ) -> Option<VerifiedToken> {
        let entry = self.cache.as_ref()?.get(key)?;
        let claims = &entry.token.claims;
        let fresh = claims.exp > now
            && claims.nbf.is_none_or(|nbf| nbf <= now)
            && expect.is_none_or(|u| claims.token_use == u)
            && generation(&claims.iss) == Some(entry.generation);
        if !fresh {
            return None;
        }
        Some(entry.token.clone())
    }

    pub(crate) fn insert(&self, key: [u8; 32], token: &VerifiedToken, generation: u64) {
        if let Some(cache) = &self.cache {
            cache.insert(
                key,
                Arc::new(Cached {
                    token: token.clone(),
                    generation,
                }),
            );
        }
    }

    /// Entries held now (tests, metrics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use time::OffsetDateTime;

    use crate::tokens::config::{SigningAlgorithm, TokensConfig};
    use crate::tokens::keys::KeyRing;
    use crate::tokens::mint::{Minter, Subject};
    use crate::tokens::verify::{
        LocalKeys, OwnIssuer, TokenUse, Verifier, VerifyConfig, VerifyErrorKind,
    };

    const ISS: &str = "https://bridge.test";

    fn setup(cache_bytes: u64) -> (Arc<KeyRing>, Minter, Verifier) {
        let keys = Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256).unwrap());
        let minter = Minter::new(Arc::clone(&keys), ISS.to_owned(), &TokensConfig::default());
        let verifier = Verifier::new(
            &VerifyConfig {
                cache_bytes,
                ..VerifyConfig::default()
            },
            &[],
            Some(OwnIssuer {
                issuer: ISS.to_owned(),
                client_id: TokensConfig::default().client_id,
                keys: Arc::clone(&keys) as Arc<dyn LocalKeys>,
            }),
        )
        .unwrap();
        (keys, minter, verifier)
    }

    #[tokio::test]
    async fn a_token_seen_before_is_served_from_the_cache() {
        let (_, minter, verifier) = setup(1 << 20);
        let token = minter
            .access_token(&Subject::new("alice"), "fam")
            .unwrap()
            .token;
        let first = verifier.verify_as(&token, TokenUse::Access).await.unwrap();
        assert_eq!(verifier.inner.cache.len(), 1);
        let second = verifier.verify_as(&token, TokenUse::Access).await.unwrap();
        assert_eq!(first.claims, second.claims);
        // Another use than the one cached is checked in full, and refused.
        let err = verifier.verify_as(&token, TokenUse::Id).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::WrongTokenUse);
    }

    #[tokio::test]
    async fn a_cached_token_dies_with_the_key_that_signed_it() {
        let (keys, minter, verifier) = setup(1 << 20);
        let token = minter
            .access_token(&Subject::new("alice"), "fam")
            .unwrap()
            .token;
        verifier.verify(&token).await.unwrap();
        // current -> previous -> gone.
        keys.rotate().unwrap();
        keys.rotate().unwrap();
        keys.retire().unwrap();
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::UnknownKey);
    }

    #[tokio::test]
    async fn an_expired_entry_is_never_served() {
        let (_, minter, verifier) = setup(1 << 20);
        let issued =
            OffsetDateTime::now_utc() - time::Duration::minutes(15) + time::Duration::seconds(1);
        let token = minter
            .mint_at(TokenUse::Access, &Subject::new("alice"), "fam", issued)
            .unwrap()
            .token;
        verifier.verify(&token).await.unwrap();
        let key = super::TokenCache::key(&token);
        let exp = verifier.verify(&token).await.unwrap().claims.exp;
        // At `exp` the cache no longer answers, whatever the leeway.
        assert!(
            verifier
                .inner
                .cache
                .get(&key, exp, None, |_| Some(1))
                .is_none()
        );
        assert!(
            verifier
                .inner
                .cache
                .get(&key, exp - 1, None, |_| Some(1))
                .is_some()
        );
        // Nor for keys of another generation.
        assert!(
            verifier
                .inner
                .cache
                .get(&key, exp - 1, None, |_| Some(2))
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_changed_byte_is_another_token() {
        let (_, minter, verifier) = setup(1 << 20);
        let token = minter
            .access_token(&Subject::new("alice"), "fam")
            .unwrap()
            .token;
        verifier.verify(&token).await.unwrap();
        let (head, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let forged = format!("{head}.{flipped}{}", &sig[1..]);
        assert!(verifier.verify(&forged).await.is_err());
    }

    #[tokio::test]
    async fn the_cache_is_bounded_by_weight() {
        // Room for a handful of entries only.
        let (_, minter, verifier) = setup(4 * 1024);
        for i in 0..50 {
            let token = minter
                .access_token(&Subject::new(format!("u{i}")), "f")
                .unwrap()
                .token;
            verifier.verify(&token).await.unwrap();
        }
        let held = verifier.inner.cache.len();
        assert!((1..=10).contains(&held), "{held} entries in 4 KiB");
        let (_, minter, off) = setup(0);
        let token = minter.access_token(&Subject::new("x"), "f").unwrap().token;
        off.verify(&token).await.unwrap();
        assert_eq!(off.inner.cache.len(), 0);
    }
}
