//! Our tokens, checked from the outside: an independent JWT library
//! (PyJWT's `PyJWKClient`) fetching our JWKS over HTTP, and key rotation as
//! a verifier sees it.

use std::sync::Arc;

use session_bridge::tokens::config::{SigningAlgorithm, TokensConfig};
use session_bridge::tokens::keys::KeyRing;
use session_bridge::tokens::mint::{Minter, Subject};
use session_bridge::tokens::publish;
use session_bridge::tokens::verify::{OwnIssuer, Verifier, VerifyConfig};

use crate::common;

/// Verifies with PyJWT exactly as a Cognito-configured service would:
/// keys by `kid` from the JWKS URL, pinned algorithm, exact issuer; the
/// access token has no `aud` and is recognised by `token_use` +
/// `client_id`, the id token by `aud`. Also checks that a wrong audience and
/// a tampered signature are refused, so a passing run means something.
const PYJWT_CHECK: &str = r#"
import sys, jwt
jwks_url, issuer, client_id, alg, access, id_token = sys.argv[1:]
client = jwt.PyJWKClient(jwks_url, cache_keys=False)
required = {"require": ["exp", "iat", "iss", "sub"]}

key = client.get_signing_key_from_jwt(access)
claims = jwt.decode(access, key.key, algorithms=[alg], issuer=issuer, options=required)
assert "aud" not in claims, claims
assert claims["token_use"] == "access", claims
assert claims["client_id"] == client_id, claims
assert claims["username"] == "alice", claims
assert claims["cognito:groups"] == ["admin", "staff"], claims

key = client.get_signing_key_from_jwt(id_token)
claims = jwt.decode(id_token, key.key, algorithms=[alg], issuer=issuer, audience=client_id, options=required)
assert claims["token_use"] == "id", claims
assert claims["cognito:username"] == "alice", claims

try:
    jwt.decode(id_token, key.key, algorithms=[alg], issuer=issuer, audience="someone-else")
    raise SystemExit("wrong audience accepted")
except jwt.InvalidAudienceError:
    pass
head, payload, sig = access.split(".")
forged = ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
try:
    jwt.decode(forged, client.get_signing_key_from_jwt(forged).key, algorithms=[alg], issuer=issuer)
    raise SystemExit("tampered signature accepted")
except jwt.InvalidSignatureError:
    pass
print("ok")
"#;

/// Serve `publish::router` on a loopback port; returns the issuer URL.
async fn serve_publication(keys: Arc<KeyRing>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app: axum::Router = publish::router(keys, issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_our_tokens_through_our_jwks() {
    let python = common::harness_env("SB_PYTHON");
    for alg in SigningAlgorithm::ALL {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TokensConfig {
            algorithm: alg,
            ..TokensConfig::default()
        };
        let (ring, generated) = KeyRing::load_or_generate(&cfg, dir.path()).unwrap();
        assert!(generated);
        let keys = Arc::new(ring);
        let issuer = serve_publication(Arc::clone(&keys)).await;
        let minter = Minter::new(keys, issuer.clone(), &cfg);
        let alice = Subject::new("a1b2")
            .with_username("alice")
            .with_groups(["admin", "staff"]);
        let access = minter.access_token(&alice, "family-1").unwrap().token;
        let id = minter.id_token(&alice, "family-1").unwrap().token;

        let jwks_url = format!("{issuer}{}", publish::JWKS_PATH);
        let args = [
            jwks_url,
            issuer,
            cfg.client_id.clone(),
            alg.to_string(),
            access,
            id,
        ];
        let python = python.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg("-c")
                .arg(PYJWT_CHECK)
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "{alg}: PyJWT refused our tokens:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn rotation_keeps_live_tokens_until_the_previous_key_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let cfg = TokensConfig::default();
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    let service_keys = Arc::new(ring);
    let issuer = "https://bridge.test".to_owned();
    let minter = Minter::new(Arc::clone(&service_keys), issuer.clone(), &cfg);
    let own = OwnIssuer {
        issuer,
        client_id: cfg.client_id.clone(),
        keys: service_keys.clone(),
    };
    let verifier = Verifier::new(&VerifyConfig::default(), &[], Some(own)).unwrap();

    let old = minter
        .access_token(&Subject::new("alice"), "family")
        .unwrap()
        .token;
    verifier.verify(&old).await.unwrap();

    // The operator's `keys rotate`: another process, same file; the service
    // notices on its next reload.
    let (operator, _) = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    operator.rotate().unwrap();
    assert!(service_keys.reload().unwrap());
    let new = minter
        .access_token(&Subject::new("alice"), "family")
        .unwrap()
        .token;
    assert_ne!(
        kid(&new),
        kid(&old),
        "new tokens are signed by the new current key"
    );
    verifier
        .verify(&old)
        .await
        .expect("a token signed before the rotation still verifies");
    verifier.verify(&new).await.unwrap();

    assert!(operator.retire().unwrap());
    assert!(service_keys.reload().unwrap());
    let err = verifier.verify(&old).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "unknown_key");
    verifier.verify(&new).await.unwrap();
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The operator's view, through the binary: `keys generate`, `token mint`,
/// `keys rotate` (the old token still verifies), `keys retire` (it fails
/// with `unknown_key`).
#[test]
fn cli_rotation_and_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[tokens]\nalgorithm = \"ES256\"\n").unwrap();
    let (config, data) = (config.to_str().unwrap(), data.to_str().unwrap());
    let sb = |args: &[&str]| {
        let mut all = vec!["--config", config, "--data-dir", data];
        all.extend_from_slice(args);
        common::run_bin(dir.path(), &all, &[])
    };

    let (code, stdout, stderr) = sb(&["keys", "generate"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(listed.len(), 2, "{stdout}");
    assert!(
        listed[0].starts_with("current ") && listed[0].contains("ES256"),
        "{stdout}"
    );
    assert!(listed[1].starts_with("next "), "{stdout}");
    let (code, _, stderr) = sb(&["keys", "generate"]);
    assert_eq!(code, 1, "a second generate must not replace live keys");
    assert!(stderr.contains("already exists"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(format!("{data}/keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (code, token, stderr) = sb(&[
        "token", "mint", "--sub", "alice", "--groups", "a,b", "--use", "id",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let token = token.trim().to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "only the token on stdout: {token}"
    );

    let (code, stdout, stderr) = sb(&["token", "verify", &token]);
    assert_eq!(code, 0, "{stderr}");
    let claims: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["token_use"], "id");
    assert_eq!(claims["cognito:groups"], serde_json::json!(["a", "b"]));

    let (code, stdout, stderr) = sb(&["keys", "rotate"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let (code, _, stderr) = sb(&["token", "verify", &token]);
    assert_eq!(
        code, 0,
        "a token signed before the rotation still verifies: {stderr}"
    );

    let (code, stdout, stderr) = sb(&["keys", "retire"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let (code, stdout, stderr) = sb(&["token", "verify", &token]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.starts_with("unknown_key"), "{stderr}");
    assert!(stdout.is_empty());
}

/// `token verify -` reads the token from standard input; garbage is
/// `malformed`, not a crash.
#[test]
fn cli_verify_reads_stdin() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, token, stderr) = common::run_bin(
        dir.path(),
        &["--data-dir", data, "token", "mint", "--sub", "bob"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("generated"),
        "first use generates dev keys and says so: {stderr}"
    );
    for (input, expected_code, expected) in
        [(token.as_str(), 0, ""), ("not.a.token\n", 1, "malformed")]
    {
        let mut child = std::process::Command::new(common::bin())
            .args(["--data-dir", data, "token", "verify", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(expected_code), "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
    }
}
