//! Forward-auth through real nginx (`auth_request`) and real Caddy
//! (`forward_auth`), with the configs from infra/.

use serde_json::Value;

use super::env::{Addrs, Bridge, Front, browser, echo, header, login, one, verify_bearer};
use super::upstream::Upstream;
use crate::common::free_port;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Caddy,
}

const IDENTITY: [&str; 4] = [
    "x-auth-request-user",
    "x-auth-request-sub",
    "x-auth-request-groups",
    "x-auth-request-email",
];

/// The upstream got none of the identity headers and no `Authorization`
/// (Caddy 2.6 sends the ones the bridge answered empty as empty headers).
fn assert_anonymous(e: &Value, front: &Front) {
    for name in IDENTITY.iter().chain(&["authorization"]) {
        assert!(
            header(e, name).iter().all(|v| v.is_empty()),
            "{name} reached the upstream: {e}\nproxy log:\n{}",
            front.log()
        );
    }
}

pub async fn forward_auth(kind: Kind) {
    let legacy = Upstream::start("legacy").await;
    let api = Upstream::start("api").await;
    let listen = format!("127.0.0.1:{}", free_port());
    let public = format!("http://{listen}");
    let bridge = Bridge::start(Some(&public), "");
    let addrs = Addrs {
        listen: &listen,
        bridge: bridge.addr(),
        legacy: &legacy.addr,
        api: &api.addr,
    };
    let front = match kind {
        Kind::Nginx => Front::nginx(&addrs),
        Kind::Caddy => Front::caddy(&addrs),
    };
    let base = front.url.clone();

    // Without a credential: the API refuses, a page navigation is sent to
    // the bridge's login page with the original URI (escaped) as `next`.
    let anon = browser();
    let r = anon.get(format!("{base}/api/data")).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", front.log());
    let r = anon
        .get(format!("{base}/legacy/page?x=1&y=a%20b"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", front.log());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "/login?next=%2Flegacy%2Fpage%3Fx%3D1%26y%3Da%2520b"
    );
    let r = anon.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("name=\"next\" value=\"/legacy/page?x=1&amp;y=a%20b\"")
    );
    // A script's call to a page route is refused, not redirected.
    let r = anon
        .get(format!("{base}/legacy/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A public route lets an anonymous request through, without any
    // identity the client made up.
    let e = echo(
        anon.get(format!("{base}/public/home"))
            .header("X-Auth-Request-User", "admin")
            .header("x-auth-request-sub", "0")
            .header("X-Auth-Request-Groups", "admins")
            .header("X-Auth-Request-Email", "admin@evil.example")
            .header("Authorization", "Bearer forged"),
    )
    .await;
    assert_eq!(e["app"], "legacy");
    assert_anonymous(&e, &front);

    // After login through the proxy, the upstreams see the bridge's
    // identity and a token minted from the session, never the client's.
    let alice = browser();
    login(&alice, &base, "alice").await;
    let e = echo(
        alice
            .get(format!("{base}/legacy/page"))
            .header("X-Auth-Request-User", "admin")
            .header("Authorization", "Bearer forged"),
    )
    .await;
    assert_eq!(e["app"], "legacy");
    assert_eq!(one(&e, "x-auth-request-user"), "alice", "{}", front.log());
    assert_eq!(one(&e, "x-auth-request-sub"), bridge.alice_sub);
    assert_eq!(one(&e, "x-auth-request-groups"), "staff,ops");
    assert_eq!(one(&e, "x-auth-request-email"), "alice@example.test");
    let minted = one(&e, "authorization").to_owned();
    let claims = verify_bearer(&minted, &bridge.service.url, &public).await;
    assert_eq!(claims["sub"], bridge.alice_sub);
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["iss"], public);

    // The API route (token mode) through the token cookie; the same cached
    // upstream token for the same session.
    let e = echo(
        alice
            .get(format!("{base}/api/data"))
            .header("X-Auth-Request-User", "admin"),
    )
    .await;
    assert_eq!(e["app"], "api");
    assert_eq!(one(&e, "x-auth-request-user"), "alice");
    assert_eq!(
        one(&e, "authorization"),
        minted,
        "the upstream token is cached per session"
    );

    // bob has no email and no groups: client-sent ones do not fill the gap.
    let bob = browser();
    login(&bob, &base, "bob").await;
    let e = echo(
        bob.get(format!("{base}/legacy/page"))
            .header("X-Auth-Request-Email", "admin@evil.example")
            .header("X-Auth-Request-Groups", "admins"),
    )
    .await;
    assert_eq!(one(&e, "x-auth-request-user"), "bob");
    assert_eq!(one(&e, "x-auth-request-sub"), bridge.bob_sub);
    for name in ["x-auth-request-email", "x-auth-request-groups"] {
        assert!(
            header(&e, name).iter().all(|v| v.is_empty()),
            "a client-sent {name} reached the upstream: {e}"
        );
    }

    // A bearer token proves itself and reaches the upstream unchanged.
    let r = alice
        .post(format!("{base}/token?delivery=body"))
        .header("origin", &public)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let e = echo(
        reqwest::Client::new()
            .get(format!("{base}/api/data"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(one(&e, "authorization"), format!("Bearer {token}"));
    assert_eq!(one(&e, "x-auth-request-user"), "alice");

    // Shadow rules: the enforced mode (session) decides, the evaluated one
    // (token) is counted where it disagrees, as in the library layer.
    let before = bridge.shadow_disagreements().await;
    let r = reqwest::Client::new()
        .get(format!("{base}/shadow/page"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "shadow enforces the session");
    let e = echo(alice.get(format!("{base}/shadow/page"))).await;
    assert_eq!(one(&e, "x-auth-request-user"), "alice");
    assert_eq!(bridge.shadow_disagreements().await, before + 1.0);

    // CSRF: a cookie-authenticated cross-site POST is refused; a
    // same-origin one goes through with its body.
    let r = alice
        .post(format!("{base}/legacy/form"))
        .header("origin", "http://evil.example")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e = echo(
        alice
            .post(format!("{base}/legacy/form"))
            .header("origin", &public)
            .body("x=1"),
    )
    .await;
    assert_eq!(e["method"], "POST");
    assert_eq!(e["body"], "x=1");

    // Forward-auth is counted like the library layer counts requests.
    let ok = bridge
        .requests(&[
            ("rule", "/legacy/*"),
            ("credential", "session"),
            ("outcome", "ok"),
        ])
        .await;
    let refused = bridge
        .requests(&[
            ("rule", "/legacy/*"),
            ("credential", "none"),
            ("outcome", "csrf_failed"),
        ])
        .await;
    assert!(
        ok >= 3.0 && refused >= 1.0,
        "ok {ok}, csrf refused {refused}"
    );

    // Logout through the proxy ends the session and the upstream's token.
    let r = alice
        .post(format!("{base}/logout"))
        .header("origin", &public)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = alice
        .get(format!("{base}/legacy/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = reqwest::Client::new()
        .get(format!("{base}/api/data"))
        .header("authorization", &minted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the upstream's token outlived the session");
}
