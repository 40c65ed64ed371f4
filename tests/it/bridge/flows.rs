//! The scenarios, each run on every store.

use reqwest::StatusCode;
use serde_json::Value;

use super::env::{Backend, Env, Moto, ORIGIN, browser, login};

async fn sub_at(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of cookie `name` among `Set-Cookie` headers.
fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

/// Log in with a plain client and keep the raw cookies.
async fn raw_login(service: &str, user: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(format!("{service}/login"))
        .header("origin", ORIGIN)
        .json(&serde_json::json!({"username": user, "password": super::env::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r);
    (
        cookie_value(&set, "sb_session").unwrap(),
        cookie_value(&set, "sb_token").unwrap(),
    )
}

async fn bearer_token(client: &reqwest::Client, service: &str) -> String {
    let r = client
        .post(format!("{service}/token?delivery=body"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn password_login_gives_one_identity_to_legacy_pages_and_the_api(backend: Backend) {
    let env = Env::start(backend).await;
    let browser = browser();
    let login = login(&browser, &env.a.url, "alice").await;
    let sub = login["sub"].as_str().unwrap().to_owned();
    let (status, legacy) = sub_at(&browser, &format!("{}/legacy", env.app)).await;
    assert_eq!(status, 200, "{legacy}");
    assert_eq!(legacy["credential"]["kind"], "session");
    let (status, api) = sub_at(&browser, &format!("{}/api", env.app)).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["credential"]["kind"], "token_cookie");
    assert_eq!(legacy["sub"], sub);
    assert_eq!(api["sub"], sub);
    assert_eq!(api["username"], "alice");
    // The other instance sees the same session.
    let (status, me) = sub_at(&browser, &format!("{}/session", env.b.url)).await;
    assert_eq!(status, 200);
    assert_eq!(me["sub"], sub);
    assert!(me["expires_in"].as_i64().unwrap() > 0);
    // Wrong password: 401, no cookie.
    let r = reqwest::Client::new()
        .post(format!("{}/login", env.a.url))
        .json(&serde_json::json!({"username": "alice", "password": "nope-nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(set_cookies(&r).is_empty());
}

pub async fn an_idp_token_becomes_a_session_on_another_instance(backend: Backend) {
    let env = Env::start(backend).await;
    let (access, id_token) = Moto::new().initiate_auth(&env.client_id, "bob").await;
    let browser = browser();
    // An ID token is not an access token.
    let r = browser
        .post(format!("{}/session", env.b.url))
        .bearer_auth(&id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = browser
        .post(format!("{}/session", env.b.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let (status, me) = sub_at(&browser, &format!("{}/session", env.a.url)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], created["sub"]);
    assert_eq!(me["credential"]["kind"], "session");
    assert_eq!(
        me["issuer"],
        format!(
            "https://cognito-idp.us-east-1.amazonaws.com/{}",
            env.pool_id
        )
    );
    let (status, legacy) = sub_at(&browser, &format!("{}/legacy", env.app)).await;
    assert_eq!(status, 200);
    assert_eq!(legacy["sub"], created["sub"]);
}

pub async fn logout_on_one_instance_kills_the_session_and_its_tokens_everywhere(backend: Backend) {
    let env = Env::start(backend).await;
    let browser = browser();
    login(&browser, &env.a.url, "alice").await;
    let bearer = bearer_token(&browser, &env.a.url).await;
    let api = |token: &str| {
        reqwest::Client::new()
            .get(format!("{}/api", env.app))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(api(&bearer).await.unwrap().status(), 200);
    // A session linked to a token of the same family (another device, or a
    // token turned into a session) must die with the logout too.
    let linked = reqwest::Client::new()
        .post(format!("{}/session", env.a.url))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 201);
    let linked = cookie_value(&set_cookies(&linked), "sb_session").unwrap();
    let linked_status = |url: String| {
        reqwest::Client::new()
            .get(url)
            .header("cookie", format!("sb_session={linked}"))
            .send()
    };
    assert_eq!(
        linked_status(format!("{}/session", env.b.url))
            .await
            .unwrap()
            .status(),
        200
    );

    let r = browser
        .post(format!("{}/logout", env.b.url))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("sb_session=;")),
        "cookies not cleared"
    );

    for service in [&env.a.url, &env.b.url] {
        let (status, _) = sub_at(&browser, &format!("{service}/session")).await;
        assert_eq!(status, 401);
        let r = reqwest::Client::new()
            .get(format!("{service}/session"))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            401,
            "a token minted from the session survived logout on {service}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "revoked");
    }
    let r = api(&bearer).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        linked_status(format!("{}/session", env.b.url))
            .await
            .unwrap()
            .status(),
        401,
        "a linked session survived logout"
    );
    assert_eq!(
        linked_status(format!("{}/legacy", env.app))
            .await
            .unwrap()
            .status(),
        401
    );
}

pub async fn logout_everywhere_kills_only_that_users_credentials(backend: Backend) {
    let env = Env::start(backend).await;
    let (laptop, phone, bob) = (browser(), browser(), browser());
    login(&laptop, &env.a.url, "alice").await;
    login(&phone, &env.b.url, "alice").await;
    login(&bob, &env.a.url, "bob").await;
    let phone_token = bearer_token(&phone, &env.b.url).await;
    let bob_token = bearer_token(&bob, &env.a.url).await;
    // The IdP's own tokens for alice die too.
    let (idp_access, _) = Moto::new().initiate_auth(&env.client_id, "alice").await;
    let api = |token: &str| {
        reqwest::Client::new()
            .get(format!("{}/api", env.app))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(api(&idp_access).await.unwrap().status(), 200);
    let r = laptop
        .post(format!("{}/logout/all", env.a.url))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    assert_eq!(
        sub_at(&phone, &format!("{}/session", env.a.url)).await.0,
        401
    );
    assert_eq!(sub_at(&phone, &format!("{}/legacy", env.app)).await.0, 401);
    assert_eq!(api(&phone_token).await.unwrap().status(), 401);
    assert_eq!(api(&idp_access).await.unwrap().status(), 401);
    // Bob is untouched.
    assert_eq!(sub_at(&bob, &format!("{}/session", env.b.url)).await.0, 200);
    assert_eq!(api(&bob_token).await.unwrap().status(), 200);
    // Alice can log in again right away, and her new credentials work.
    let again = browser();
    login(&again, &env.a.url, "alice").await;
    assert_eq!(sub_at(&again, &format!("{}/legacy", env.app)).await.0, 200);
    assert_eq!(sub_at(&again, &format!("{}/api", env.app)).await.0, 200);
}

pub async fn route_modes_accept_what_they_should(backend: Backend) {
    let env = Env::start(backend).await;
    let (session, token) = raw_login(&env.a.url, "alice").await;
    let client = reqwest::Client::new();
    let with_session = |path: &str| {
        client
            .get(format!("{}{path}", env.app))
            .header("cookie", format!("sb_session={session}"))
            .send()
    };
    let with_token_cookie = |path: &str| {
        client
            .get(format!("{}{path}", env.app))
            .header("cookie", format!("sb_token={token}"))
            .send()
    };
    let with_bearer = |path: &str| {
        client
            .get(format!("{}{path}", env.app))
            .bearer_auth(token.clone())
            .send()
    };

    assert_eq!(with_session("/legacy").await.unwrap().status(), 200);
    assert_eq!(
        with_bearer("/legacy").await.unwrap().status(),
        401,
        "a session route must refuse a bearer token"
    );
    assert_eq!(with_token_cookie("/legacy").await.unwrap().status(), 401);
    assert_eq!(
        with_session("/api").await.unwrap().status(),
        401,
        "a token route must refuse a session cookie"
    );
    assert_eq!(with_bearer("/api").await.unwrap().status(), 200);
    assert_eq!(with_token_cookie("/api").await.unwrap().status(), 200);

    // either + session only → a token cookie is minted on the response.
    let r = with_session("/either").await.unwrap();
    assert_eq!(r.status(), 200);
    let minted = cookie_value(&set_cookies(&r), "sb_token")
        .expect("either must mint a token cookie for a session");
    let r = client
        .get(format!("{}/api", env.app))
        .bearer_auth(&minted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // either + token cookie only → a linked session is created.
    let before = env.session_count().await;
    let r = with_token_cookie("/either").await.unwrap();
    assert_eq!(r.status(), 200);
    let linked = cookie_value(&set_cookies(&r), "sb_session")
        .expect("either must link a session to a token cookie");
    assert_eq!(env.session_count().await, before + 1);
    let r = client
        .get(format!("{}/legacy", env.app))
        .header("cookie", format!("sb_session={linked}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    // either + bearer → accepted, nothing set.
    let r = with_bearer("/either").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r).is_empty());
    // A path the app could read differently than the policy is refused.
    let r = with_bearer("/api/..%2Flegacy").await.unwrap();
    assert_eq!(r.status(), 400);
    // Nothing at all → 401 with a stable code.
    let r = client
        .get(format!("{}/either", env.app))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_credential");
}

pub async fn shadow_mode_counts_disagreements(backend: Backend) {
    let env = Env::start(backend).await;
    let (session, token) = raw_login(&env.a.url, "alice").await;
    let client = reqwest::Client::new();
    let needle = "session_bridge_shadow_disagreements_total";
    let rule = env.shadow_rule.clone();
    let app = env.app.clone();
    let count = move |_: &Env| {
        let (rule, app) = (rule.clone(), app.clone());
        async move {
            let text = reqwest::get(format!("{app}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .filter(|l| l.starts_with(needle) && l.contains(&format!("rule=\"{rule}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        }
    };
    assert_eq!(count(&env).await, 0.0);
    // Both credentials: session enforced, token evaluated, both accept.
    let both = format!("sb_session={session}; sb_token={token}");
    assert_eq!(
        client
            .get(format!("{}/shadow", env.app))
            .header("cookie", &both)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(count(&env).await, 0.0);
    // Session only: enforced mode accepts, the token mode would refuse.
    let r = client
        .get(format!("{}/shadow", env.app))
        .header("cookie", format!("sb_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count(&env).await, 1.0);
    // Token only: refused now (session enforced), the token mode would accept.
    let r = client
        .get(format!("{}/shadow", env.app))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(count(&env).await, 2.0);
    let requests = env.metric("session_bridge_requests_total{").await;
    assert!(requests >= 3.0, "requests are counted");
}

pub async fn csrf_refuses_cross_site_cookie_posts_but_not_bearer_posts(backend: Backend) {
    let env = Env::start(backend).await;
    let browser = browser();
    let login = login(&browser, &env.a.url, "alice").await;
    let post = |origin: Option<&str>| {
        let mut r = browser.post(format!("{}/either", env.app));
        if let Some(o) = origin {
            r = r.header("origin", o.to_owned());
        }
        r.send()
    };
    assert_eq!(
        post(Some("https://evil.example")).await.unwrap().status(),
        403
    );
    assert_eq!(post(Some("null")).await.unwrap().status(), 403);
    assert_eq!(
        post(None).await.unwrap().status(),
        403,
        "no origin proof, no token: refuse"
    );
    assert_eq!(post(Some(ORIGIN)).await.unwrap().status(), 200);
    let r = browser
        .post(format!("{}/either", env.app))
        .header("sec-fetch-site", "cross-site")
        .header("x-csrf-token", login["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Double submit works without Origin.
    let r = browser
        .post(format!("{}/either", env.app))
        .header("x-csrf-token", login["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same cross-site POST with a bearer token is fine.
    let token = bearer_token(&browser, &env.a.url).await;
    let r = reqwest::Client::new()
        .post(format!("{}/either", env.app))
        .header("origin", "https://evil.example")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Service endpoints follow the same rule.
    let r = browser
        .post(format!("{}/logout", env.a.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        sub_at(&browser, &format!("{}/session", env.a.url)).await.0,
        200,
        "a refused logout must not log out"
    );
}

pub async fn redirects_after_login_stay_local(backend: Backend) {
    let env = Env::start(backend).await;
    let attempts = [
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/legacy?x=1", "/legacy?x=1"),
    ];
    for (next, expected) in attempts {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/login", env.a.url))
            .header("origin", ORIGIN)
            .form(&[
                ("username", "alice"),
                ("password", super::env::PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "next={next}");
        assert_eq!(r.headers()["location"], expected, "next={next}");
    }
    // The login page never reflects `next` unescaped.
    let page = reqwest::get(format!("{}/login?next=/%22%3E%3Cscript%3E", env.a.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("\"><script>"), "{page}");
}

pub async fn bad_session_cookies_get_401_and_create_nothing(backend: Backend) {
    let env = Env::start(backend).await;
    let (session, _) = raw_login(&env.a.url, "alice").await;
    let before = env.session_count().await;
    // At least the login's session (a Redis database may hold sessions of an
    // earlier run of the tests against the same harness).
    assert!(before >= 1);
    let mut tampered = session.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cookies = [
        tampered,
        session[..10].to_owned(),
        format!("{session}x"),
        "x".repeat(4000),
        "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "../../etc/passwd".to_owned(),
        "%00%ff".to_owned(),
    ];
    let client = reqwest::Client::new();
    for cookie in &cookies {
        for url in [
            format!("{}/session", env.a.url),
            format!("{}/legacy", env.app),
            format!("{}/either", env.app),
        ] {
            let r = client
                .get(&url)
                .header("cookie", format!("sb_session={cookie}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{url} with cookie {cookie:.40}");
        }
    }
    assert_eq!(
        env.session_count().await,
        before,
        "bad cookies created sessions"
    );
}

/// A redirect's `Location`, resolved against the request's URL.
fn location(r: &reqwest::Response) -> String {
    r.url()
        .join(r.headers()["location"].to_str().unwrap())
        .unwrap()
        .to_string()
}

pub async fn oidc_login_gives_one_identity_to_legacy_pages_and_the_api(backend: Backend) {
    let env = Env::start(backend).await;
    let browser = browser();
    // Bridge → provider's interaction form → sign in → back to the bridge.
    let r = browser
        .get(format!("{}/login/oidc?next=/after", env.a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let mut next = location(&r);
    let interaction = location(&browser.get(&next).send().await.unwrap());
    assert_eq!(
        browser.get(&interaction).send().await.unwrap().status(),
        200
    );
    let r = browser
        .post(&interaction)
        .form(&[("username", "oidc-carol"), ("password", "password")])
        .send()
        .await
        .unwrap();
    next = location(&r);
    while !next.starts_with(&env.a.url) {
        next = location(&browser.get(&next).send().await.unwrap());
    }
    let r = browser.get(&next).send().await.unwrap();
    assert_eq!(r.status(), 303, "callback: {:?}", r.text().await);
    assert_eq!(location(&r), format!("{}/after", env.a.url));

    let (status, legacy) = sub_at(&browser, &format!("{}/legacy", env.app)).await;
    assert_eq!(status, 200, "{legacy}");
    let (status, api) = sub_at(&browser, &format!("{}/api", env.app)).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(legacy["sub"], "oidc-carol");
    assert_eq!(api["sub"], "oidc-carol");
    assert_eq!(legacy["issuer"], crate::common::harness_env("SB_OIDC_URL"));
    let (status, me) = sub_at(&browser, &format!("{}/session", env.b.url)).await;
    assert_eq!(status, 200);
    assert_eq!(me["sub"], "oidc-carol");
}
