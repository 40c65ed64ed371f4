//! The hostile-token suite: every forged or broken token is rejected with
//! the kind an operator (and an attacker) sees, and none panics.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use session_bridge::tokens::verify::{VerifyConfig, VerifyErrorKind as K};

use super::support::{
    OwnSetup, TestKey, Tripwire, access_claims, alg_name, b64, id_claims, now, rejected, sign_raw,
    with,
};

/// A header + payload with an arbitrary signature string.
fn assemble(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        b64(header.to_string()),
        b64(claims.to_string())
    )
}

/// Replace the payload of `token` by `payload` bytes, keeping header and signature.
fn with_payload(token: &str, payload: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(payload), parts[2])
}

#[tokio::test]
async fn hostile_tokens_are_rejected_with_the_right_kind() {
    let own = OwnSetup::new();
    let attacker = TestKey::new(Algorithm::RS256, "rsa");
    let stranger = TestKey::new(Algorithm::RS256, "stranger");
    let tripwire = Tripwire::start().await;
    let claims = access_claims();
    let good = own.rsa.sign(json!({}), &claims);
    let other_good = own
        .rsa
        .sign(json!({}), &with(access_claims(), json!({"sub": "user-2"})));
    let good_parts: Vec<&str> = good.split('.').collect();
    let rsa_header = json!({"alg": "RS256", "kid": "rsa", "typ": "JWT"});
    let mut cases: Vec<(&str, String, K)> = Vec::new();

    // alg none, any casing, with an empty or a copied signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": "rsa"});
        cases.push((
            "alg none, empty signature",
            assemble(&header, &claims, ""),
            K::AlgorithmNotAllowed,
        ));
    }
    cases.push((
        "alg none with a real signature",
        assemble(
            &json!({"alg": "none", "kid": "rsa"}),
            &claims,
            good_parts[2],
        ),
        K::AlgorithmNotAllowed,
    ));
    // HMAC with our public key as the secret (the classic key-confusion attack).
    let pem_secret = EncodingKey::from_secret(own.rsa.public_pem().as_bytes()).unwrap();
    let der_secret = EncodingKey::from_secret(&own.rsa.public_der).unwrap();
    for (what, secret) in [("PEM", &pem_secret), ("DER", &der_secret)] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let header = json!({"alg": alg_name(alg), "kid": "rsa"});
            let name = if what == "PEM" {
                "HMAC keyed with our public key (PEM)"
            } else {
                "HMAC keyed with our public key (DER)"
            };
            cases.push((
                name,
                sign_raw(&header, &claims, secret, alg),
                K::AlgorithmNotAllowed,
            ));
        }
    }
    // Algorithm / key disagreement.
    cases.push((
        "RS256 header naming the EC key",
        sign_raw(
            &json!({"alg": "RS256", "kid": "ec"}),
            &claims,
            &own.rsa.enc,
            Algorithm::RS256,
        ),
        K::AlgorithmNotAllowed,
    ));
    cases.push((
        "ES256 header naming the RSA key",
        sign_raw(
            &json!({"alg": "ES256", "kid": "rsa"}),
            &claims,
            &own.ec.enc,
            Algorithm::ES256,
        ),
        K::AlgorithmNotAllowed,
    ));
    cases.push((
        "PS256 with a key pinned to RS256",
        sign_raw(
            &json!({"alg": "PS256", "kid": "rsa"}),
            &claims,
            &own.rsa.enc,
            Algorithm::PS256,
        ),
        K::AlgorithmNotAllowed,
    ));
    cases.push((
        "unknown alg ES512",
        assemble(&json!({"alg": "ES512", "kid": "ec"}), &claims, "c2ln"),
        K::AlgorithmNotAllowed,
    ));
    // kid games.
    cases.push((
        "unknown kid",
        stranger.sign(json!({}), &claims),
        K::UnknownKey,
    ));
    cases.push((
        "path-like kid",
        stranger.sign(json!({"kid": "../../etc/passwd"}), &claims),
        K::UnknownKey,
    ));
    cases.push((
        "1 KB kid",
        stranger.sign(json!({"kid": "k".repeat(1024)}), &claims),
        K::Malformed,
    ));
    cases.push((
        "10 KB kid",
        stranger.sign(json!({"kid": "k".repeat(10 * 1024)}), &claims),
        K::TooLarge,
    ));
    cases.push((
        "kid not a string",
        stranger.sign(json!({"kid": ["rsa"]}), &claims),
        K::Malformed,
    ));
    // Key-carrying headers: ignored, never fetched.
    let jku = format!("{}/jwks.json", tripwire.url);
    let x5u = format!("{}/cert.pem", tripwire.url);
    cases.push((
        "jku to the attacker's JWKS",
        stranger.sign(json!({"jku": jku}), &claims),
        K::UnknownKey,
    ));
    cases.push((
        "x5u to the attacker's certificate",
        stranger.sign(json!({"x5u": x5u}), &claims),
        K::UnknownKey,
    ));
    let embedded = serde_json::to_value(&attacker.jwk).unwrap();
    cases.push((
        "embedded jwk with our kid",
        attacker.sign(json!({"jwk": embedded, "jku": jku}), &claims),
        K::BadSignature,
    ));
    cases.push((
        "embedded jwk with its own kid",
        stranger.sign(
            json!({"jwk": serde_json::to_value(&stranger.jwk).unwrap()}),
            &claims,
        ),
        K::UnknownKey,
    ));
    cases.push((
        "x5c chain with our kid",
        attacker.sign(json!({"x5c": ["MIIB"]}), &claims),
        K::BadSignature,
    ));
    // Critical extensions, JWE-only members.
    cases.push((
        "unknown crit",
        own.rsa.sign(json!({"crit": ["exp"], "exp": 1}), &claims),
        K::Malformed,
    ));
    cases.push((
        "b64=false",
        own.rsa
            .sign(json!({"crit": ["b64"], "b64": false}), &claims),
        K::Malformed,
    ));
    cases.push((
        "zip header",
        own.rsa.sign(json!({"zip": "DEF"}), &claims),
        K::Malformed,
    ));
    // Signatures.
    cases.push((
        "stripped signature",
        format!("{}.{}.", good_parts[0], good_parts[1]),
        K::BadSignature,
    ));
    cases.push((
        "no signature segment",
        format!("{}.{}", good_parts[0], good_parts[1]),
        K::Malformed,
    ));
    let swapped = format!(
        "{}.{}.{}",
        good_parts[0],
        good_parts[1],
        other_good.split('.').nth(2).unwrap()
    );
    cases.push((
        "signature swapped from another token",
        swapped,
        K::BadSignature,
    ));
    cases.push((
        "tampered payload (sub changed)",
        with_payload(
            &good,
            &with(access_claims(), json!({"sub": "admin"})).to_string(),
        ),
        K::BadSignature,
    ));
    cases.push((
        "signature by another key with our kid",
        attacker.sign(json!({}), &claims),
        K::BadSignature,
    ));
    cases.push((
        "RS384 signature under an RS256 header",
        sign_raw(&rsa_header, &claims, &own.rsa.enc, Algorithm::RS384),
        K::BadSignature,
    ));
    cases.push((
        "signature not base64url",
        format!("{}.{}.sig+/=", good_parts[0], good_parts[1]),
        K::Malformed,
    ));
    // Shape.
    cases.push((
        "JWE, five segments",
        format!("{}.a.b.c.d", good_parts[0]),
        K::Malformed,
    ));
    cases.push((
        "JWE header with three segments",
        own.rsa.sign(json!({"enc": "A256GCM"}), &claims),
        K::Malformed,
    ));
    cases.push(("one segment", good_parts[0].to_owned(), K::Malformed));
    cases.push(("four segments", format!("{good}.x"), K::Malformed));
    cases.push(("empty token", String::new(), K::Malformed));
    cases.push((
        "header not base64url",
        format!("{}!.{}.{}", good_parts[0], good_parts[1], good_parts[2]),
        K::Malformed,
    ));
    cases.push((
        "padded base64",
        format!("{}==.{}.{}", good_parts[0], good_parts[1], good_parts[2]),
        K::Malformed,
    ));
    cases.push((
        "payload not base64url",
        format!("{}.@@.{}", good_parts[0], good_parts[2]),
        K::Malformed,
    ));
    cases.push((
        "header not JSON",
        format!("{}.{}.{}", b64("RS256"), good_parts[1], good_parts[2]),
        K::Malformed,
    ));
    cases.push((
        "header a JSON array",
        format!(
            "{}.{}.{}",
            b64(r#"["RS256"]"#),
            good_parts[1],
            good_parts[2]
        ),
        K::Malformed,
    ));
    cases.push((
        "payload not JSON",
        with_payload(&good, "hello"),
        K::Malformed,
    ));
    cases.push((
        "payload a JSON array",
        with_payload(&good, r#"["https://bridge.test"]"#),
        K::Malformed,
    ));
    cases.push(("trailing newline", format!("{good}\n"), K::Malformed));
    cases.push(("non-ASCII", format!("{good}é"), K::Malformed));
    // Claim types and values (validly signed).
    let signed = |extra: Value| own.rsa.sign(json!({}), &with(access_claims(), extra));
    cases.push((
        "exp as a string",
        signed(json!({"exp": (now() + 600).to_string()})),
        K::Malformed,
    ));
    cases.push((
        "exp 1e400",
        with_payload(
            &good,
            &access_claims()
                .to_string()
                .replacen("\"exp\":", "\"exp\":1e400,\"x\":", 1),
        ),
        K::Malformed,
    ));
    cases.push((
        "exp float overflow (1e300)",
        signed(json!({"exp": 1e300})),
        K::Malformed,
    ));
    cases.push(("exp negative", signed(json!({"exp": -1})), K::Malformed));
    cases.push((
        "exp past u64",
        with_payload(
            &good,
            &access_claims().to_string().replacen(
                "\"exp\":",
                "\"exp\":18446744073709551616,\"x\":",
                1,
            ),
        ),
        K::Malformed,
    ));
    cases.push(("sub a number", signed(json!({"sub": 42})), K::Malformed));
    cases.push((
        "cognito:groups a string",
        signed(json!({"cognito:groups": "admin"})),
        K::Malformed,
    ));
    cases.push((
        "aud an object",
        signed(json!({"aud": {"any": true}})),
        K::Malformed,
    ));
    cases.push((
        "iss an array",
        signed(json!({"iss": ["https://bridge.test"]})),
        K::Malformed,
    ));
    cases.push((
        "duplicate sub",
        with_payload(
            &good,
            r#"{"iss":"https://bridge.test","sub":"a","sub":"b"}"#,
        ),
        K::Malformed,
    ));
    cases.push(("expired", signed(json!({"exp": now() - 3600})), K::Expired));
    cases.push((
        "nbf in the future",
        signed(json!({"nbf": now() + 3600})),
        K::NotYetValid,
    ));
    cases.push((
        "iat in the future",
        signed(json!({"iat": now() + 3600})),
        K::NotYetValid,
    ));
    cases.push(("no exp", signed(json!({"exp": null})), K::MissingClaim));
    cases.push(("no iss", signed(json!({"iss": null})), K::MissingClaim));
    cases.push(("no sub", signed(json!({"sub": null})), K::MissingClaim));
    cases.push((
        "no token_use",
        signed(json!({"token_use": null})),
        K::MissingClaim,
    ));
    cases.push((
        "token_use unknown",
        signed(json!({"token_use": "refresh"})),
        K::WrongTokenUse,
    ));
    cases.push((
        "foreign issuer",
        signed(json!({"iss": "https://evil.test"})),
        K::UnknownIssuer,
    ));
    cases.push((
        "issuer with a trailing slash",
        signed(json!({"iss": "https://bridge.test/"})),
        K::WrongIssuer,
    ));
    cases.push((
        "access token of another client",
        signed(json!({"client_id": "other"})),
        K::WrongAudience,
    ));
    cases.push((
        "ID token for another client",
        own.rsa.sign(
            json!({}),
            &with(id_claims(), json!({"aud": ["other", "third"]})),
        ),
        K::WrongAudience,
    ));
    // Size.
    cases.push((
        "1 MB token",
        format!(
            "{}.{}.{}",
            good_parts[0],
            "A".repeat(1 << 20),
            good_parts[2]
        ),
        K::TooLarge,
    ));

    let mut failures = Vec::new();
    for (name, token, want) in &cases {
        let got = rejected(&own.verifier, token).await;
        if got != *want {
            failures.push(format!("{name}: got {got}, want {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert_eq!(tripwire.hits(), 0, "a jku / x5u URL was fetched");
    // The untampered token still verifies: the cases failed for their own reason.
    own.verifier.verify(&good).await.unwrap();
}

#[tokio::test]
async fn key_urls_in_a_valid_token_are_ignored_not_fetched() {
    let own = OwnSetup::new();
    let tripwire = Tripwire::start().await;
    let extra =
        json!({"jku": format!("{}/jwks", tripwire.url), "x5u": format!("{}/x5u", tripwire.url)});
    let token = own.rsa.sign(extra, &access_claims());
    let verified = own.verifier.verify(&token).await.unwrap();
    assert_eq!(verified.claims.sub, "user-1");
    assert_eq!(tripwire.hits(), 0);
}

#[tokio::test]
async fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    // A large limit (the highest allowed), so the parser does meet the nesting.
    let own = OwnSetup::with_config(VerifyConfig {
        max_token_bytes: 1 << 20,
        ..VerifyConfig::default()
    });
    let good = own.rsa.sign(json!({}), &access_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let deep_payload = format!(
        r#"{{"iss":"https://bridge.test","x":{}}}"#,
        "[".repeat(10_000)
    );
    let deep_claims = format!("{}.{}.{}", parts[0], b64(&deep_payload), parts[2]);
    assert_eq!(rejected(&own.verifier, &deep_claims).await, K::Malformed);
    let deep_header = format!(r#"{{"alg":"RS256","x":{}}}"#, "[".repeat(10_000));
    let token = format!("{}.{}.{}", b64(&deep_header), parts[1], parts[2]);
    assert_eq!(rejected(&own.verifier, &token).await, K::Malformed);
    let deep_objects = format!(
        r#"{{"iss":"https://bridge.test","x":{}}}"#,
        "{\"a\":".repeat(10_000)
    );
    let token = format!("{}.{}.{}", parts[0], b64(&deep_objects), parts[2]);
    assert_eq!(rejected(&own.verifier, &token).await, K::Malformed);
}

/// Every single-character change to a valid token (for each of our three
/// algorithms) is rejected, and never by a panic.
#[tokio::test]
async fn every_one_character_mutation_is_rejected() {
    let own = OwnSetup::new();
    const ALPHABET: &[u8] = b"AaZz09-_.=+/ ";
    for key in own.keys() {
        let good = key.sign(json!({}), &access_claims());
        own.verifier.verify(&good).await.unwrap();
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            for &c in ALPHABET {
                if bytes[i] == c {
                    continue;
                }
                let mut mutated = bytes.to_vec();
                mutated[i] = c;
                let mutated = String::from_utf8(mutated).unwrap();
                assert!(
                    own.verifier.verify(&mutated).await.is_err(),
                    "{:?}: mutation at {i} to {:?} accepted",
                    key.alg,
                    c as char
                );
            }
        }
    }
}
