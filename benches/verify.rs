//! Benchmark: our verifier against a raw `jsonwebtoken::decode` of the same
//! token with the same key, for each signing algorithm we mint with.
//!
//! `cargo bench --bench verify`. The verifier's extra work (its own header
//! parse, a typed parse of the claims before routing, issuer and key
//! lookup, the claim rules) should stay under 10 % of the raw decode.
//! After criterion's figures, a paired report gives the ratio measured in
//! interleaved batches, which a busy machine skews far less.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use criterion::{Criterion, criterion_group};
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

/// One algorithm's minted token, our verifier, and the raw decode's key
/// (the same public key) and validation.
struct Setup {
    alg: SigningAlgorithm,
    token: String,
    verifier: Verifier,
    key: DecodingKey,
    validation: Validation,
}

impl Setup {
    fn raw(&self) {
        black_box(
            jsonwebtoken::decode::<RawClaims>(black_box(&self.token), &self.key, &self.validation)
                .unwrap(),
        );
    }

    fn ours(&self) {
        black_box(ready(self.verifier.verify(black_box(&self.token))).unwrap());
    }
}

fn setups() -> Vec<Setup> {
    let dir = tempfile::tempdir().unwrap();
    SigningAlgorithm::ALL
        .into_iter()
        .map(|alg| {
            let cfg = TokensConfig {
                algorithm: alg,
                ..TokensConfig::default()
            };
            let path = dir.path().join(alg.as_str());
            let ring = Arc::new(KeyRing::generate(path, alg, false).unwrap());
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

            let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
            let key = DecodingKey::from_jwk(ring.jwks().find(&kid).unwrap()).unwrap();
            let mut validation = Validation::new(alg.to_jwt());
            validation.leeway = cfg.verify.leeway.as_secs();
            validation.set_required_spec_claims(&["exp", "iss", "sub"]);
            validation.set_issuer(&[ISSUER]);

            let setup = Setup {
                alg,
                token,
                verifier,
                key,
                validation,
            };
            setup.raw();
            setup.ours();
            setup
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for s in setups() {
        let mut group = c.benchmark_group(s.alg.as_str());
        group.bench_function("raw_decode", |b| b.iter(|| s.raw()));
        group.bench_function("verifier", |b| b.iter(|| s.ours()));
        group.finish();
    }
}

/// Mean µs per call of raw and ours, and the median ratio of back-to-back
/// batches: load that drifts between criterion's separate runs cancels out.
fn paired(s: &Setup) -> (f64, f64, f64) {
    const BATCH: u32 = 100;
    const ROUNDS: usize = 80;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut raw_total, mut ours_total) = (0.0, 0.0);
    for round in 0..ROUNDS + 5 {
        let t = Instant::now();
        (0..BATCH).for_each(|_| s.raw());
        let r = t.elapsed().as_secs_f64();
        let t = Instant::now();
        (0..BATCH).for_each(|_| s.ours());
        let o = t.elapsed().as_secs_f64();
        if round >= 5 {
            ratios.push(o / r);
            raw_total += r;
            ours_total += o;
        }
    }
    ratios.sort_by(f64::total_cmp);
    let calls = f64::from(BATCH) * ROUNDS as f64;
    (
        raw_total / calls * 1e6,
        ours_total / calls * 1e6,
        ratios[ROUNDS / 2],
    )
}

fn paired_report() {
    println!("\npaired, interleaved batches (mean per call; median ratio of batches):");
    for s in setups() {
        let (raw, ours, ratio) = paired(&s);
        println!(
            "{:>6}: raw_decode {raw:6.1} µs, verifier {ours:6.1} µs, verifier/raw {ratio:.3} ({:+.1} %)",
            s.alg.as_str(),
            (ratio - 1.0) * 100.0
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test` runs benches once as smoke tests (no `--bench` flag): the
    // paired report is a measurement, not a test.
    if std::env::args().any(|a| a == "--bench") {
        paired_report();
    }
}
