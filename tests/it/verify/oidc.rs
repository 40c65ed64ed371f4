//! Tokens from an OIDC provider (oidc-provider) verified through discovery;
//! key rotation and the refetch cooldown. Tests that rotate keys run their
//! own provider (same script as the harness's) so that rotation cannot
//! break another test using `SB_OIDC_URL`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use session_bridge::tokens::verify::{
    IssuerKind, OidcTrust, TokenUse, TokenUseSetting, TrustConfig, Verifier, VerifyConfig,
    VerifyErrorKind as K,
};

use super::support::{TestKey, now, rejected};
use crate::common::{harness_env, out_dir};

const API: &str = "urn:session-bridge:test-api";
const API_ES256: &str = "urn:session-bridge:test-api-es256";

struct Provider {
    url: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Provider {
    fn harness() -> Self {
        Self {
            url: harness_env("SB_OIDC_URL"),
            child: None,
            http: reqwest::Client::new(),
        }
    }

    /// A private provider on `port` (0: any free port).
    async fn spawn(port: u16) -> Self {
        // Fail (never skip) when the harness was not run: it installs node_modules.
        harness_env("SB_OIDC_URL");
        let infra = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra");
        let dir = tempfile::tempdir().unwrap().keep();
        let port_file = dir.join("port");
        let log = std::fs::File::create(
            out_dir().join(format!("oidc-verify-{}.log", std::process::id())),
        )
        .unwrap();
        let child = Command::new("node")
            .arg(infra.join("oidc/server.js"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("SB_OIDC_PORT_FILE", &port_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start node infra/oidc/server.js");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse::<u16>().unwrap();
            }
            assert!(Instant::now() < deadline, "oidc provider did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            http: reqwest::Client::new(),
        }
    }

    /// A client_credentials JWT access token for `resource`.
    async fn token(&self, resource: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&scope=api&resource={}",
            resource.replace(':', "%3A")
        );
        let resp = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth("sb-test-client", Some("sb-test-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let json: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{status} {json}");
        json["access_token"].as_str().unwrap().to_owned()
    }

    async fn rotate(&self) {
        let resp = self
            .http
            .post(format!("{}/__test/rotate?keep_old=0", self.url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }

    fn trust(&self, edit: impl FnOnce(&mut OidcTrust)) -> Vec<TrustConfig> {
        let mut t = OidcTrust {
            name: Some("oidc-test".into()),
            issuer: self.url.clone(),
            audiences: vec![API.into(), API_ES256.into()],
            client_ids: vec!["sb-test-client".into()],
            token_use: TokenUseSetting::Both,
            algorithms: vec!["RS256".into(), "ES256".into()],
            required_groups: vec![],
            required_scopes: vec!["api".into()],
        };
        edit(&mut t);
        vec![TrustConfig::Oidc(t)]
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn oidc_tokens_verify_through_discovery() {
    let idp = Provider::harness();
    let v = Verifier::start(&VerifyConfig::default(), &idp.trust(|_| {}), None)
        .await
        .unwrap();
    for resource in [API, API_ES256] {
        let t = v
            .verify_as(&idp.token(resource).await, TokenUse::Access)
            .await
            .unwrap();
        assert_eq!(t.issuer_kind, IssuerKind::Oidc);
        assert_eq!(t.claims.iss, idp.url);
        assert_eq!(t.claims.aud, [resource]);
        assert_eq!(t.claims.client_id.as_deref(), Some("sb-test-client"));
        assert_eq!(t.claims.scopes, ["api"]);
        assert_eq!(t.raw_claims()["client_id"], "sb-test-client");
    }
    assert_eq!(v.jwks_fetch_count(&idp.url), Some(1));

    let token = idp.token(API).await;
    let es256 = idp.token(API_ES256).await;
    let with = |edit: fn(&mut OidcTrust)| {
        Verifier::new(&VerifyConfig::default(), &idp.trust(edit), None).unwrap()
    };
    assert_eq!(
        rejected(&with(|t| t.algorithms = vec!["RS256".into()]), &es256).await,
        K::AlgorithmNotAllowed
    );
    assert_eq!(
        rejected(&with(|t| t.audiences = vec!["urn:other".into()]), &token).await,
        K::WrongAudience
    );
    assert_eq!(
        rejected(&with(|t| t.client_ids = vec!["someone".into()]), &token).await,
        K::WrongAudience
    );
    assert_eq!(
        rejected(&with(|t| t.required_scopes = vec!["admin".into()]), &token).await,
        K::InsufficientScope
    );
    assert_eq!(
        rejected(&with(|t| t.token_use = TokenUseSetting::Id), &token).await,
        K::WrongTokenUse
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_needs_one_refetch_and_the_cooldown_bounds_a_flood() {
    let idp = Provider::spawn(0).await;
    // Long enough that two floods of a debug build fit in one window.
    let cooldown = Duration::from_secs(3);
    let cfg = VerifyConfig {
        jwks_cooldown: cooldown,
        ..VerifyConfig::default()
    };
    let v = Verifier::start(&cfg, &idp.trust(|_| {}), None)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), v.wait_ready())
        .await
        .expect("first fetch");
    let before = idp.token(API).await;
    v.verify(&before).await.unwrap();
    assert_eq!(v.jwks_fetch_count("oidc-test"), Some(1));

    // 200 concurrent tokens with unknown kids, past the cooldown: one fetch, shared.
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    let forger = Arc::new(TestKey::new(Algorithm::RS256, "unused"));
    let flood = |round: usize| {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let (v, forger, iss) = (v.clone(), Arc::clone(&forger), idp.url.clone());
            tasks.spawn(async move {
                let claims = json!({"iss": iss, "sub": "x", "aud": API, "client_id": "sb-test-client",
                    "scope": "api", "iat": now(), "exp": now() + 60});
                let token = forger.sign(json!({"kid": format!("forged-{round}-{i}"), "typ": "at+jwt"}), &claims);
                v.verify(&token).await.map(|_| ()).unwrap_err().kind()
            });
        }
        tasks
    };
    let flood_started = Instant::now();
    for kind in flood(1).join_all().await {
        assert_eq!(kind, K::UnknownKey);
    }
    assert_eq!(
        v.jwks_fetch_count("oidc-test"),
        Some(2),
        "200 misses shared one fetch"
    );
    for kind in flood(2).join_all().await {
        assert_eq!(kind, K::UnknownKey);
    }
    // At most one fetch per cooldown window (exactly none more when both
    // floods fit in one, as they do unless the machine is very slow).
    let windows = (flood_started.elapsed().as_secs_f64() / cooldown.as_secs_f64()).floor() as u64;
    let fetched = v.jwks_fetch_count("oidc-test").unwrap();
    assert!(
        fetched <= 2 + windows,
        "{fetched} fetches in {windows} extra cooldown windows"
    );
    let fetched_before_rotation = fetched;

    // Rotation: the new key is found by exactly one refetch.
    idp.rotate().await;
    let after = idp.token(API).await;
    assert_ne!(kid(&before), kid(&after));
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    v.verify(&after).await.unwrap();
    assert_eq!(
        v.jwks_fetch_count("oidc-test"),
        Some(fetched_before_rotation + 1)
    );
    // keep_old=0 dropped the previous key from the JWKS, and from our cache.
    assert_eq!(rejected(&v, &before).await, K::UnknownKey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_down_at_start_does_not_block_and_is_picked_up_when_up() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let issuer = format!("http://127.0.0.1:{port}");
    let cfg = VerifyConfig {
        jwks_cooldown: Duration::from_millis(200),
        ..VerifyConfig::default()
    };
    let down = Provider {
        url: issuer.clone(),
        child: None,
        http: reqwest::Client::new(),
    };
    let started = Instant::now();
    let v = Verifier::start(&cfg, &down.trust(|_| {}), None)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "start waited for the IdP"
    );

    let forger = TestKey::new(Algorithm::RS256, "k");
    let claims = json!({"iss": issuer, "sub": "x", "aud": API, "scope": "api", "client_id": "sb-test-client", "exp": now() + 60});
    let token = forger.sign(json!({"typ": "at+jwt"}), &claims);
    assert_eq!(rejected(&v, &token).await, K::IssuerUnavailable);
    assert!(started.elapsed() < Duration::from_secs(2));

    let idp = Provider::spawn(port).await;
    let real = idp.token(API).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match v.verify(&real).await {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    matches!(e.kind(), K::IssuerUnavailable | K::UnknownKey),
                    "{e}"
                );
                assert!(
                    Instant::now() < deadline,
                    "keys never fetched after the IdP came up: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(down);
}
