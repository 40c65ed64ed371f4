//! Benchmark: our verifier against a raw `jsonwebtoken::decode` of the same
//! token with the same key, for each signing algorithm we mint with.
//!
//! `cargo bench --bench verify`. The verifier's extra work (its own header
//! parse, a typed parse of the claims before routing, issuer and key
//! lookup, the claim rules) should stay under 10 % of the raw decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use session_bridge::tokens::config::{SigningAlgorithm, TokensConfig};
use session_bridge::tokens::keys::KeyRing;
use session_bridge::tokens::mint::{Minter, Subject};
use session_bridge::tokens::verify::{OwnIssuer, TokenUse, Verifier};

const ISSUER: &str = "https://bridge.bench";

/// What a hand-written verifier would decode: the claims it then uses.
#[allow(dead_code)]
#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    exp: u64,
    token_use: String,
    client_id: String,
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
    scope: Option<String>,
}

/// Run a future that completes without waiting (the verifier's path for a
/// known key never awaits), so no executor cost is measured.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("verification waited"),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for alg in SigningAlgorithm::ALL {
        let cfg = TokensConfig {
            algorithm: alg,
            ..TokensConfig::default()
        };
        let ring = Arc::new(KeyRing::generate(dir.path().join(alg.as_str()), alg, false).unwrap());
        let minter = Minter::new(Arc::clone(&ring), ISSUER.to_owned(), &cfg);
        let subject = Subject::new("user-1")
            .with_username("alice")
            .with_groups(["staff", "ops"]);
        let token = minter
            .mint(TokenUse::Access, &subject, "family-1")
            .unwrap()
            .token;

        let own = OwnIssuer {
            issuer: ISSUER.to_owned(),
            client_id: cfg.client_id.clone(),
            keys: Arc::clone(&ring) as _,
        };
        let verifier = Verifier::new(&cfg.verify, &[], Some(own)).unwrap();
        ready(verifier.verify(&token)).unwrap();

        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let key = DecodingKey::from_jwk(ring.jwks().find(&kid).unwrap()).unwrap();
        let mut validation = Validation::new(alg.to_jwt());
        validation.leeway = cfg.verify.leeway.as_secs();
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[ISSUER]);
        jsonwebtoken::decode::<RawClaims>(&token, &key, &validation).unwrap();

        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("raw_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<RawClaims>(black_box(&token), &key, &validation).unwrap()
            })
        });
        group.bench_function("verifier", |b| {
            b.iter(|| ready(verifier.verify(black_box(&token))).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
