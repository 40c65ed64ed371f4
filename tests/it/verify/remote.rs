//! The remote JWKS cache against a scriptable IdP: failures keep the old
//! keys, size and time limits hold, refresh runs on its own, discovery is
//! checked.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use session_bridge::tokens::verify::{
    CognitoTrust, OidcTrust, TokenUseSetting, TrustConfig, Verifier, VerifyConfig,
    VerifyErrorKind as K,
};

use super::fake_idp::{FakeIdp, Reply};
use super::support::{TestKey, now, rejected};

const POOL: &str = "us-east-1_FakePool1";
const ISS: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_FakePool1";

fn cfg() -> VerifyConfig {
    VerifyConfig {
        jwks_cooldown: Duration::from_millis(200),
        http_timeout: Duration::from_millis(500),
        ..VerifyConfig::default()
    }
}

fn cognito(idp: &FakeIdp) -> Vec<TrustConfig> {
    vec![TrustConfig::Cognito(CognitoTrust {
        name: Some("fake".into()),
        region: "us-east-1".into(),
        user_pool_id: POOL.into(),
        jwks_url: Some(format!("{}/jwks", idp.url)),
        client_ids: vec!["app".into()],
        token_use: TokenUseSetting::Both,
        algorithms: vec!["RS256".into(), "ES256".into()],
        required_groups: vec![],
        required_scopes: vec![],
    })]
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| serde_json::to_value(&k.jwk).unwrap()).collect::<Vec<_>>()})
}

fn token(key: &TestKey, iss: &str) -> String {
    key.sign(
        json!({}),
        &json!({"iss": iss, "sub": "u", "token_use": "access", "client_id": "app", "aud": "app",
            "iat": now(), "exp": now() + 300}),
    )
}

async fn after_cooldown() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn old_keys_are_kept_when_a_fetch_fails() {
    let idp = FakeIdp::start().await;
    let (a, b) = (
        TestKey::new(Algorithm::RS256, "a"),
        TestKey::new(Algorithm::ES256, "b"),
    );
    idp.set("/jwks", Reply::Json(jwks(&[&a])));
    let v = Verifier::new(&cfg(), &cognito(&idp), None).unwrap();
    v.verify(&token(&a, ISS)).await.unwrap();
    assert_eq!(v.jwks_fetch_count("fake"), Some(1));

    idp.set("/jwks", Reply::Status(500));
    after_cooldown().await;
    assert_eq!(rejected(&v, &token(&b, ISS)).await, K::UnknownKey);
    assert_eq!(
        v.jwks_fetch_count(ISS),
        Some(2),
        "the unknown kid caused one refetch"
    );
    v.verify(&token(&a, ISS))
        .await
        .expect("old keys survive a failed fetch");

    idp.set("/jwks", Reply::Json(json!({"keys": []})));
    after_cooldown().await;
    assert_eq!(rejected(&v, &token(&b, ISS)).await, K::UnknownKey);
    v.verify(&token(&a, ISS))
        .await
        .expect("an empty JWKS does not wipe the keys");

    idp.set("/jwks", Reply::Json(jwks(&[&b])));
    after_cooldown().await;
    v.verify(&token(&b, ISS)).await.unwrap();
    assert_eq!(
        rejected(&v, &token(&a, ISS)).await,
        K::UnknownKey,
        "a successful fetch replaces the keys"
    );
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let key = TestKey::new(Algorithm::RS256, "a");
    let idp = FakeIdp::start().await;
    let mut big = jwks(&[&key]);
    big["padding"] = json!("x".repeat(300 * 1024));
    idp.set("/jwks", Reply::Json(big));
    let v = Verifier::new(&cfg(), &cognito(&idp), None).unwrap();
    assert_eq!(rejected(&v, &token(&key, ISS)).await, K::IssuerUnavailable);

    // Without a Content-Length the limit holds while streaming.
    let idp = FakeIdp::start().await;
    idp.set("/jwks", Reply::Chunked(64 << 20));
    let v = Verifier::new(&cfg(), &cognito(&idp), None).unwrap();
    let started = Instant::now();
    assert_eq!(rejected(&v, &token(&key, ISS)).await, K::IssuerUnavailable);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_hanging_idp_costs_at_most_the_http_timeout() {
    let key = TestKey::new(Algorithm::RS256, "a");
    let idp = FakeIdp::start().await;
    idp.set("/jwks", Reply::Hang);
    let started = Instant::now();
    let v = Verifier::start(&cfg(), &cognito(&idp), None).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "start waits for no IdP"
    );
    assert_eq!(rejected(&v, &token(&key, ISS)).await, K::IssuerUnavailable);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background() {
    let (a, b) = (
        TestKey::new(Algorithm::RS256, "a"),
        TestKey::new(Algorithm::RS256, "b"),
    );
    let idp = FakeIdp::start().await;
    idp.set("/jwks", Reply::Json(jwks(&[&a])));
    let cfg = VerifyConfig {
        jwks_refresh: Duration::from_secs(1),
        ..cfg()
    };
    let v = Verifier::start(&cfg, &cognito(&idp), None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), v.wait_ready())
        .await
        .unwrap();
    idp.set("/jwks", Reply::Json(jwks(&[&a, &b])));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fetched = v.jwks_fetch_count("fake").unwrap();
    assert!(fetched >= 2, "{fetched}");
    v.verify(&token(&b, ISS)).await.unwrap();
    assert_eq!(
        v.jwks_fetch_count("fake"),
        Some(fetched),
        "no miss: the refresh had the key"
    );
    drop(v);
    // The refresher ends with the verifier.
    let hits = idp.hits();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(idp.hits(), hits);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let key = TestKey::new(Algorithm::RS256, "a");
    let idp = FakeIdp::start().await;
    let trust = vec![TrustConfig::Oidc(OidcTrust {
        name: None,
        issuer: idp.url.clone(),
        audiences: vec!["app".into()],
        client_ids: vec![],
        token_use: TokenUseSetting::Both,
        algorithms: vec!["RS256".into()],
        required_groups: vec![],
        required_scopes: vec![],
    })];
    idp.set("/jwks", Reply::Json(jwks(&[&key])));
    idp.set(
        "/.well-known/openid-configuration",
        Reply::Json(
            json!({"issuer": "https://evil.test", "jwks_uri": format!("{}/jwks", idp.url)}),
        ),
    );
    let v = Verifier::new(&cfg(), &trust, None).unwrap();
    assert_eq!(
        rejected(&v, &token(&key, &idp.url)).await,
        K::IssuerUnavailable
    );

    // A jwks_uri over plain HTTP to a non-loopback host is refused too.
    idp.set(
        "/.well-known/openid-configuration",
        Reply::Json(json!({"issuer": idp.url, "jwks_uri": "http://keys.example.com/jwks"})),
    );
    after_cooldown().await;
    assert_eq!(
        rejected(&v, &token(&key, &idp.url)).await,
        K::IssuerUnavailable
    );

    idp.set(
        "/.well-known/openid-configuration",
        Reply::Json(json!({"issuer": idp.url, "jwks_uri": format!("{}/jwks", idp.url)})),
    );
    after_cooldown().await;
    v.verify(&token(&key, &idp.url)).await.unwrap();
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped_not_fatal() {
    let (good, enc) = (
        TestKey::new(Algorithm::RS256, "good"),
        TestKey::new(Algorithm::RS256, "enc"),
    );
    let idp = FakeIdp::start().await;
    let mut enc_jwk = serde_json::to_value(&enc.jwk).unwrap();
    enc_jwk["use"] = json!("enc");
    let mut hs_jwk = serde_json::to_value(&good.jwk).unwrap();
    hs_jwk["kid"] = json!("hs");
    hs_jwk["alg"] = json!("HS256");
    let keys = json!({"keys": [
        {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
        {"kty": "XYZ", "kid": "alien"},
        "not even an object",
        enc_jwk,
        hs_jwk,
        serde_json::to_value(&good.jwk).unwrap(),
    ]});
    idp.set("/jwks", Reply::Json(keys));
    let v = Verifier::new(&cfg(), &cognito(&idp), None).unwrap();
    v.verify(&token(&good, ISS)).await.unwrap();
    assert_eq!(rejected(&v, &token(&enc, ISS)).await, K::UnknownKey);
}

/// Issue 14, bug 1: the JWKS endpoint hangs and the cooldown is shorter than
/// the fetch timeout. Concurrent tokens with an unknown `kid` share one
/// fetch and are all refused within about one fetch timeout; they used to
/// queue behind each other, one fetch after another (8 × the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_share_one_fetch_of_a_hanging_jwks() {
    let (known, unknown) = (
        TestKey::new(Algorithm::RS256, "known"),
        TestKey::new(Algorithm::RS256, "unknown"),
    );
    let idp = FakeIdp::start().await;
    idp.set("/jwks", Reply::Json(jwks(&[&known])));
    let cfg = VerifyConfig {
        jwks_cooldown: Duration::from_secs(1),
        http_timeout: Duration::from_secs(2),
        ..VerifyConfig::default()
    };
    let v = std::sync::Arc::new(Verifier::new(&cfg, &cognito(&idp), None).unwrap());
    v.verify(&token(&known, ISS)).await.unwrap();
    idp.set("/jwks", Reply::Hang);
    tokio::time::sleep(cfg.jwks_cooldown + Duration::from_millis(100)).await;
    let (hits, fetches) = (idp.hits(), v.jwks_fetch_count("fake").unwrap());

    let forged: Vec<String> = (0..8).map(|_| token(&unknown, ISS)).collect();
    let (known_token, forged_again) = (token(&known, ISS), token(&unknown, ISS));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in forged {
        let v = v.clone();
        tasks.spawn(async move { (rejected(&v, &t).await, started.elapsed()) });
    }
    let mut answered = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (kind, after) = done.unwrap();
        assert_eq!(kind, K::UnknownKey);
        answered.push(after);
    }
    answered.sort();
    // One fetch timeout plus scheduling slack; queued fetches took 16 s.
    assert!(
        answered[7] < 2 * cfg.http_timeout,
        "answered after {answered:?}"
    );
    assert_eq!(idp.hits() - hits, 1, "the endpoint saw one fetch");
    assert_eq!(v.jwks_fetch_count("fake").unwrap() - fetches, 1);

    // Cached keys keep verifying while the endpoint hangs, and a miss
    // within the cooldown (counted from the end of the fetch) waits for nothing.
    let again = Instant::now();
    v.verify(&known_token).await.unwrap();
    assert_eq!(rejected(&v, &forged_again).await, K::UnknownKey);
    assert!(again.elapsed() < cfg.http_timeout, "{:?}", again.elapsed());
    assert_eq!(idp.hits() - hits, 1);
}
