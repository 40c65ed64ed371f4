//! The OIDC authorization-code login (`/login/oidc` → provider → callback)
//! against the harness's oidc-provider, through a real browser-like client.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use url::Url;

use crate::common::{Service, free_port, harness_env};

struct Bridge {
    service: Service,
    _dir: tempfile::TempDir,
}

impl Bridge {
    /// A bridge that logs users in with the provider at `issuer`.
    fn start(issuer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("oidc-secret");
        std::fs::write(&secret, "sb-bridge-secret\n").unwrap();
        let config = dir.path().join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[store]
kind = "memory"

[login]
source = "none"

[login.oidc]
issuer = "{issuer}"
client_id = "sb-bridge"
client_secret_file = "{secret}"
display_name = "Test <IdP>"
# `groups` is this provider's scope for the groups claim.
scopes = ["openid", "profile", "email", "groups"]

[[tokens.trust]]
kind = "oidc"
issuer = "{issuer}"
audiences = ["sb-bridge"]
"#,
                secret = secret.display()
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        let service = Service::start(
            &[
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        );
        Self { service, _dir: dir }
    }

    fn url(&self) -> &str {
        &self.service.url
    }

    /// Wait (briefly) for a log line containing `needle`: the reason a
    /// login was refused is only in the log.
    fn logged(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            if self.service.logged(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

/// A browser: one cookie jar for the bridge and the provider, redirects
/// followed by the test.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> Url {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect from {}",
        r.url()
    );
    let loc = r.headers()["location"].to_str().unwrap();
    r.url().join(loc).unwrap()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

fn sets_session(r: &reqwest::Response) -> bool {
    cookie_value(&set_cookies(r), "sb_session").is_some_and(|v| !v.is_empty())
}

/// Start a login at the bridge and sign in at the provider as `user`; stops
/// before the callback. Returns the callback URL and the pending-login
/// cookie's value.
async fn authorize(
    client: &reqwest::Client,
    bridge: &str,
    next: &str,
    user: &str,
) -> (Url, String) {
    let mut start = Url::parse(&format!("{bridge}/login/oidc")).unwrap();
    start.query_pairs_mut().append_pair("next", next);
    let r = client.get(start).send().await.unwrap();
    let auth = location(&r);
    let set = set_cookies(&r);
    let pending = cookie_value(&set, "sb_oidc").expect("pending-login cookie");
    let cookie = set.iter().find(|c| c.starts_with("sb_oidc=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Max-Age=600", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(
        auth.as_str().starts_with(&harness_env("SB_OIDC_URL")),
        "{auth}"
    );
    let q: std::collections::HashMap<_, _> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{bridge}/callback"));
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22);

    // The provider: authorization → interaction form → POST → authorization
    // resumed → back to the bridge.
    let interaction = location(&client.get(auth).send().await.unwrap());
    let form = client.get(interaction.clone()).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let r = client
        .post(interaction)
        .form(&[("username", user), ("password", "password")])
        .send()
        .await
        .unwrap();
    let mut next_url = location(&r);
    while !next_url.as_str().starts_with(bridge) {
        next_url = location(&client.get(next_url).send().await.unwrap());
    }
    assert_eq!(next_url.path(), "/callback");
    (next_url, pending)
}

async fn whoami(client: &reqwest::Client, bridge: &str) -> (StatusCode, Value) {
    let r = client
        .get(format!("{bridge}/session"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn login_through_the_provider_creates_a_session() {
    let oidc = harness_env("SB_OIDC_URL");
    let bridge = Bridge::start(&oidc);
    let client = browser();

    let page = client
        .get(format!("{}/login?next=/app", bridge.url()))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<a href="/login/oidc?next=%2Fapp">Sign in with Test &lt;IdP&gt;</a>"#),
        "{html}"
    );

    let (callback, _) = authorize(&client, bridge.url(), "/app/page?x=1", "oidc-alice").await;
    let r = client.get(callback).send().await.unwrap();
    assert_eq!(location(&r).path(), "/app/page");
    assert_eq!(location(&r).query(), Some("x=1"));
    let set = set_cookies(&r);
    assert!(sets_session(&r), "{set:?}");
    assert!(cookie_value(&set, "sb_token").is_some(), "{set:?}");
    assert!(cookie_value(&set, "sb_csrf").is_some(), "{set:?}");
    assert_eq!(
        cookie_value(&set, "sb_oidc").as_deref(),
        Some(""),
        "pending cookie cleared"
    );

    let (status, me) = whoami(&client, bridge.url()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], "oidc-alice");
    assert_eq!(me["username"], "oidc-alice");
    assert_eq!(me["issuer"], oidc.as_str());
    assert_eq!(me["email"], "oidc-alice@example.test");
    assert_eq!(me["groups"], serde_json::json!(["users"]));
    assert_eq!(me["credential"]["kind"], "session");
}

#[tokio::test]
async fn a_callback_works_once() {
    let oidc = harness_env("SB_OIDC_URL");
    let bridge = Bridge::start(&oidc);
    let client = browser();
    let (callback, pending) = authorize(&client, bridge.url(), "/", "oidc-bob").await;
    let r = client.get(callback.clone()).send().await.unwrap();
    assert!(sets_session(&r));

    // The same callback again, even with the pending-login cookie it had.
    let replay = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let r = replay
        .get(callback.clone())
        .header("cookie", format!("sb_oidc={pending}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("expired, was already used")
    );
    // And from the browser that finished it (its cookie is gone).
    let r = client.get(callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
}

#[tokio::test]
async fn forged_or_foreign_callbacks_create_no_session() {
    let oidc = harness_env("SB_OIDC_URL");
    let bridge = Bridge::start(&oidc);

    // A forged state: refused, and the pending login is spent.
    let client = browser();
    let (callback, _) = authorize(&client, bridge.url(), "/", "oidc-carol").await;
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged-state".into()
            } else {
                v
            };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let r = client.get(forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
    assert!(bridge.logged("state does not match"));
    let r = client.get(callback.clone()).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the pending login was used once"
    );
    assert_eq!(
        whoami(&client, bridge.url()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A callback from another browser (no pending-login cookie): login CSRF.
    let client = browser();
    let (callback, _) = authorize(&client, bridge.url(), "/", "oidc-carol").await;
    let other = browser();
    let r = other.get(callback.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));

    // A code the provider did not issue, with the right state.
    let client = browser();
    let (callback, _) = authorize(&client, bridge.url(), "/", "oidc-carol").await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" { "not-a-code".into() } else { v };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    let mut bad_code = callback.clone();
    bad_code.query_pairs_mut().clear().extend_pairs(pairs);
    let r = client.get(bad_code).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
    assert!(bridge.logged("the token endpoint refused the code: invalid_grant"));

    // The provider's error, with hostile text: a fixed page, nothing echoed.
    let client = browser();
    let (callback, _) = authorize(&client, bridge.url(), "/", "oidc-carol").await;
    let state: String = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut denied = Url::parse(&format!("{}/callback", bridge.url())).unwrap();
    denied
        .query_pairs_mut()
        .append_pair("error", "access_denied<script>")
        .append_pair("error_description", "<script>alert(1)</script>")
        .append_pair("state", &state);
    let r = client.get(denied).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!sets_session(&r));
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("<script>") && !body.contains("alert(1)"),
        "{body}"
    );
    assert!(
        bridge.logged("\"error\":\"malformed\""),
        "only a well-formed error code is logged"
    );
    assert_eq!(
        whoami(&client, bridge.url()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn open_redirect_targets_land_on_a_local_page() {
    let oidc = harness_env("SB_OIDC_URL");
    let bridge = Bridge::start(&oidc);
    for next in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ] {
        let client = browser();
        let (callback, _) = authorize(&client, bridge.url(), next, "oidc-dave").await;
        let r = client.get(callback).send().await.unwrap();
        assert!(sets_session(&r), "{next}");
        assert_eq!(r.headers()["location"], "/", "{next}");
    }
}

#[tokio::test]
async fn an_unreachable_provider_gets_a_clear_error() {
    // Fails loudly without the harness, like every test here.
    harness_env("SB_OIDC_URL");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let bridge = Bridge::start(&dead);
    let client = browser();
    let r = client
        .get(format!("{}/login/oidc?next=/x", bridge.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(set_cookies(&r).is_empty());
    let body = r.text().await.unwrap();
    assert!(body.contains("temporarily unavailable"), "{body}");
    assert!(!body.contains("127.0.0.1"), "internals leaked: {body}");
}

#[tokio::test]
async fn a_flood_of_login_starts_is_limited_per_address() {
    // Every start writes a pending record to the store: an anonymous flood
    // must not be able to fill it.
    let bridge = Bridge::start(&harness_env("SB_OIDC_URL"));
    let client = browser();
    let mut statuses = Vec::new();
    for _ in 0..35 {
        let r = client
            .get(format!("{}/login/oidc", bridge.url()))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert!(statuses[..30].iter().all(|s| *s == 303), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
}
