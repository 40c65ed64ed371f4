//! Our own tokens: minted by the key ring, verified with no HTTP; the
//! typed claims and the raw claim map; token use; key-ring generations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;
use session_bridge::tokens::config::{SigningAlgorithm, TokensConfig};
use session_bridge::tokens::keys::KeyRing;
use session_bridge::tokens::mint::{Minter, Subject};
use session_bridge::tokens::verify::{
    IssuerKind, LocalKeys, OwnIssuer, TokenUse, Verifier, VerifyConfig, VerifyErrorKind as K,
};

use super::support::{CLIENT, ISSUER, OwnSetup, TestKey, access_claims, id_claims, rejected};

#[tokio::test]
async fn minted_tokens_of_every_algorithm_verify() {
    let dir = tempfile::tempdir().unwrap();
    for alg in SigningAlgorithm::ALL {
        let cfg = TokensConfig {
            algorithm: alg,
            ..TokensConfig::default()
        };
        let ring = Arc::new(KeyRing::generate(dir.path().join(alg.as_str()), alg, false).unwrap());
        let minter = Minter::new(Arc::clone(&ring), ISSUER.to_owned(), &cfg);
        let own = OwnIssuer {
            issuer: ISSUER.to_owned(),
            client_id: cfg.client_id.clone(),
            keys: ring,
        };
        let verifier = Verifier::new(&cfg.verify, &[], Some(own)).unwrap();
        let subject = Subject::new("user-9")
            .with_username("nina")
            .with_groups(["ops", "staff"]);

        let access = minter.mint(TokenUse::Access, &subject, "family-1").unwrap();
        let v = verifier
            .verify_as(&access.token, TokenUse::Access)
            .await
            .unwrap();
        assert_eq!(v.issuer_kind, IssuerKind::Own);
        assert_eq!(v.alg, alg.to_jwt());
        assert_eq!(
            (v.claims.sub.as_str(), v.claims.token_use),
            ("user-9", TokenUse::Access)
        );
        assert_eq!(v.claims.username.as_deref(), Some("nina"));
        assert_eq!(v.claims.groups, ["ops", "staff"]);
        assert_eq!(v.claims.origin_jti.as_deref(), Some("family-1"));
        assert_eq!(v.claims.client_id.as_deref(), Some(cfg.client_id.as_str()));
        assert_eq!(v.raw_claims()["token_use"], "access");

        let id = minter.mint(TokenUse::Id, &subject, "family-1").unwrap();
        let v = verifier.verify(&id.token).await.unwrap();
        assert_eq!(v.claims.token_use, TokenUse::Id);
        assert_eq!(v.claims.aud, std::slice::from_ref(&cfg.client_id));
        let err = verifier
            .verify_as(&id.token, TokenUse::Access)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), K::WrongTokenUse);
        let err = verifier
            .verify_as(&access.token, TokenUse::Id)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), K::WrongTokenUse);
    }
}

#[tokio::test]
async fn hand_signed_tokens_of_each_algorithm_verify() {
    let own = OwnSetup::new();
    for key in own.keys() {
        let v = own
            .verifier
            .verify(&key.sign(json!({}), &access_claims()))
            .await
            .unwrap();
        assert_eq!(v.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(v.claims.scopes, ["openid", "profile"]);
        let v = own
            .verifier
            .verify(&key.sign(json!({}), &id_claims()))
            .await
            .unwrap();
        assert_eq!(v.claims.email.as_deref(), Some("alice@example.test"));
        assert_eq!(v.claims.username.as_deref(), Some("alice"));
    }
}

#[tokio::test]
async fn error_display_never_contains_the_token() {
    let own = OwnSetup::new();
    let token = own.rsa.sign(
        json!({}),
        &super::support::with(access_claims(), json!({"client_id": "x"})),
    );
    let err = own.verifier.verify(&token).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    for part in token.split('.') {
        assert!(!shown.contains(part), "{shown}");
    }
    assert!(shown.starts_with("wrong_audience: "), "{shown}");
}

/// A key source whose keys change on demand, counting how often the
/// verifier reads them.
struct Swappable {
    jwks: std::sync::Mutex<Arc<JwkSet>>,
    generation: AtomicU64,
    reads: AtomicUsize,
}

impl LocalKeys for Swappable {
    fn jwks(&self) -> Arc<JwkSet> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Arc::clone(&self.jwks.lock().unwrap())
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn own_keys_are_decoded_again_only_when_the_generation_moves() {
    let (old, new) = (
        TestKey::new(Algorithm::ES256, "old"),
        TestKey::new(Algorithm::EdDSA, "new"),
    );
    let source = Arc::new(Swappable {
        jwks: std::sync::Mutex::new(Arc::new(JwkSet {
            keys: vec![old.jwk.clone()],
        })),
        generation: AtomicU64::new(1),
        reads: AtomicUsize::new(0),
    });
    let own = OwnIssuer {
        issuer: ISSUER.to_owned(),
        client_id: CLIENT.to_owned(),
        keys: source.clone(),
    };
    let verifier = Verifier::new(&VerifyConfig::default(), &[], Some(own)).unwrap();
    let old_token = old.sign(json!({}), &access_claims());
    let new_token = new.sign(json!({}), &access_claims());
    for _ in 0..50 {
        verifier.verify(&old_token).await.unwrap();
    }
    assert_eq!(source.reads.load(Ordering::SeqCst), 1);
    assert_eq!(rejected(&verifier, &new_token).await, K::UnknownKey);

    // Rotation: the new key appears, the old one is retired.
    *source.jwks.lock().unwrap() = Arc::new(JwkSet {
        keys: vec![new.jwk.clone()],
    });
    source.generation.store(2, Ordering::SeqCst);
    verifier.verify(&new_token).await.unwrap();
    assert_eq!(rejected(&verifier, &old_token).await, K::UnknownKey);
    assert_eq!(source.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn leeway_is_applied_to_exp_nbf_and_iat() {
    let cfg = VerifyConfig {
        leeway: std::time::Duration::from_secs(60),
        ..VerifyConfig::default()
    };
    let own = OwnSetup::with_config(cfg);
    let now = super::support::now();
    let signed = |extra| {
        own.rsa
            .sign(json!({}), &super::support::with(access_claims(), extra))
    };
    own.verifier
        .verify(&signed(json!({"exp": now - 30})))
        .await
        .unwrap();
    own.verifier
        .verify(&signed(json!({"nbf": now + 30, "iat": now + 30})))
        .await
        .unwrap();
    assert_eq!(
        rejected(&own.verifier, &signed(json!({"exp": now - 90}))).await,
        K::Expired
    );
    assert_eq!(
        rejected(&own.verifier, &signed(json!({"iat": now + 90}))).await,
        K::NotYetValid
    );
}
