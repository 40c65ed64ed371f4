//! The demo pages' HTTP contract, without a browser: on by default in the
//! development setup and off when disabled, the legacy page on the session
//! (redirect to login without one, every value escaped), the API on the
//! token, "Stay signed in" behind CSRF, headers that lock the pages down.

use super::{BASE, Setup, browser_like, login_json, set_cookie};

const PASSWORD: &str = "correct horse battery";
/// A group name with every character HTML cares about.
const NASTY_GROUP: &str = r#"<b>"x"&'y'</b>"#;

#[tokio::test]
async fn demo_is_on_in_the_development_setup_and_off_when_disabled() {
    let setup = Setup::new(BASE);
    let service = setup.start();
    let client = browser_like();
    for path in ["/", "/demo"] {
        let r = client
            .get(format!("{}{path}", service.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.text().await.unwrap().contains("href=\"/demo/legacy\""));
    }
    let r = client
        .get(format!("{}/demo/static/demo.js", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let r = client
        .get(format!("{}/demo/static/nope.js", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(service);

    let setup = Setup::new(&format!("{BASE}\n[demo]\nenabled = false\n"));
    let service = setup.start();
    for path in ["/", "/demo", "/demo/legacy", "/demo/api/whoami"] {
        let r = client
            .get(format!("{}{path}", service.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} with the demo off");
    }
}

#[tokio::test]
async fn legacy_page_needs_a_session_and_escapes_what_it_shows() {
    let setup = Setup::new(BASE);
    setup.add_user("alice", &format!("staff,{NASTY_GROUP}"), PASSWORD);
    let service = setup.start();
    let client = browser_like();

    let r = client
        .get(format!("{}/demo/legacy", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fdemo%2Flegacy");
    // A dead session cookie: to the login page, and the cookie is cleared.
    let r = client
        .get(format!("{}/demo/legacy", service.url))
        .header("cookie", "sb_session=AAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(set_cookie(r.headers(), "sb_session").as_deref(), Some(""));

    let (status, _, body) = login_json(&client, &service.url, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let r = client
        .get(format!("{}/demo/legacy", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"<dd id="user">alice</dd>"#), "{page}");
    assert!(
        page.contains("staff, &lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains(NASTY_GROUP), "unescaped: {page}");
    assert!(!page.contains("{{"), "unfilled placeholder: {page}");
}

#[tokio::test]
async fn api_runs_on_the_token_and_extending_needs_csrf() {
    let setup = Setup::new(&format!("{BASE}\n[session]\nidle_ttl = \"1m\"\n"));
    setup.add_user("alice", "staff", PASSWORD);
    let service = setup.start();
    let client = browser_like();
    let url = |path: &str| format!("{}{path}", service.url);

    let r = client.get(url("/demo/api/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_credential");

    let (status, headers, body) = login_json(&client, &service.url, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let login: serde_json::Value = serde_json::from_str(&body).unwrap();
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();
    let first_token = set_cookie(&headers, "sb_token").unwrap();

    let r = client.get(url("/demo/api/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["sub"], login["sub"]);
    assert_eq!(me["credential"]["kind"], "token_cookie");
    // Mode `token`: a session cookie alone does not do.
    let session = headers
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.starts_with("sb_session=")
                .then(|| v.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let r = reqwest::Client::new()
        .get(url("/demo/api/whoami"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the API does not take the session");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // No Origin, no Sec-Fetch-Site, no CSRF header: refused.
    let r = client
        .post(url("/demo/session/extend"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(url("/demo/session/extend"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_token = set_cookie(r.headers(), "sb_token").expect("a fresh token cookie");
    assert_ne!(new_token, first_token);
    let extended: serde_json::Value = r.json().await.unwrap();
    assert_eq!(extended["credential"]["kind"], "session");
    let (before, after) = (
        login["session_expires_at"].as_i64().unwrap(),
        extended["credential"]["expires_at"].as_i64().unwrap(),
    );
    assert!(after > before, "{before} -> {after}");
    assert!(
        after
            <= extended["credential"]["absolute_expires_at"]
                .as_i64()
                .unwrap(),
        "never past the absolute end"
    );
    // The store has it: /session reports the new end.
    let r = client.get(url("/session")).send().await.unwrap();
    let now: serde_json::Value = r.json().await.unwrap();
    assert_eq!(now["credential"]["expires_at"], after);

    // After logout neither the page nor the API nor the extension works.
    let r = client
        .post(url("/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(url("/demo/legacy")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = reqwest::Client::new()
        .get(url("/demo/api/whoami"))
        .header("cookie", format!("sb_token={new_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "revoked", "{body}");
    let r = reqwest::Client::new()
        .post(url("/demo/session/extend"))
        .header("cookie", format!("{session}; sb_csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
