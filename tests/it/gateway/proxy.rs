//! The bridge's own reverse proxy, no nginx in front.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::env::{Bridge, browser, echo, header, login, one, verify_bearer};
use super::upstream::{Fnv, Hanging, Upstream, pattern};
use crate::common::free_port;

const IDENTITY: [&str; 4] = [
    "x-auth-request-user",
    "x-auth-request-sub",
    "x-auth-request-groups",
    "x-auth-request-email",
];

struct Env {
    bridge: Bridge,
    legacy: Upstream,
    api: Upstream,
    _hanging: Hanging,
}

async fn start() -> Env {
    let legacy = Upstream::start("legacy").await;
    let api = Upstream::start("api").await;
    let hanging = Hanging::start().await;
    let dead = free_port();
    let proxy = format!(
        r#"
[proxy]
response_timeout = "1s"
[[proxy.upstreams]]
prefix = "/"
url = "{legacy}"
[[proxy.upstreams]]
prefix = "/api"
url = "{api}"
[[proxy.upstreams]]
prefix = "/dead"
url = "http://127.0.0.1:{dead}"
[[proxy.upstreams]]
prefix = "/hang"
url = "http://{hanging}"
"#,
        legacy = legacy.url(),
        api = api.url(),
        hanging = hanging.addr,
    );
    let bridge = Bridge::start(None, &proxy);
    Env {
        bridge,
        legacy,
        api,
        _hanging: hanging,
    }
}

pub async fn identity_policy_and_spoofing() {
    let env = start().await;
    let base = env.bridge.service.url.clone();

    // Refused without a credential, as the library layer refuses.
    let anon = browser();
    let r = anon.get(format!("{base}/api/data")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_credential");
    let r = anon
        .get(format!("{base}/legacy/page?a=1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Flegacy%2Fpage%3Fa%3D1"
    );
    // The bridge's own routes are not proxied.
    let r = anon.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<form"));

    // Public route, anonymous: no made-up identity, no unverified
    // Authorization, no hop-by-hop headers; X-Forwarded-* set by the bridge.
    let e = echo(
        anon.get(format!("{base}/public/home?q=1"))
            .header("X-Auth-Request-User", "admin")
            .header("x-auth-request-sub", "0")
            .header("X-Auth-Request-Anything", "1")
            .header("Authorization", "Bearer forged")
            .header("Connection", "keep-alive, X-Hop")
            .header("X-Hop", "1")
            .header("X-Forwarded-For", "203.0.113.7")
            .header("X-Forwarded-Host", "evil.example"),
    )
    .await;
    assert_eq!(e["app"], "legacy");
    assert_eq!(e["uri"], "/public/home?q=1");
    for name in IDENTITY
        .iter()
        .chain(&["authorization", "x-auth-request-anything", "x-hop"])
    {
        assert!(
            header(&e, name).is_empty(),
            "{name} reached the upstream: {e}"
        );
    }
    assert_eq!(one(&e, "x-forwarded-for"), "203.0.113.7, 127.0.0.1");
    assert_eq!(one(&e, "x-forwarded-host"), env.bridge.addr());
    assert_eq!(one(&e, "x-forwarded-proto"), "http");
    assert_eq!(one(&e, "host"), env.legacy.addr);

    // Logged in: the bridge's identity and token replace the client's.
    let alice = browser();
    login(&alice, &base, "alice").await;
    let e = echo(
        alice
            .get(format!("{base}/legacy/page"))
            .header("X-Auth-Request-User", "admin")
            .header("Authorization", "Bearer forged")
            .header("X-Original-URL", "/admin")
            .header("Forwarded", "for=203.0.113.9;host=evil.example")
            .header("X-Real-IP", "203.0.113.9"),
    )
    .await;
    assert_eq!(e["app"], "legacy");
    assert_eq!(one(&e, "x-auth-request-user"), "alice");
    for spoofable in ["x-original-url", "forwarded", "x-real-ip"] {
        assert!(
            header(&e, spoofable).is_empty(),
            "{spoofable} reached the upstream: {e}"
        );
    }
    // The bridge's own cookies are credentials for the bridge only.
    let cookies = header(&e, "cookie").join("; ");
    for ours in ["sb_session=", "sb_token=", "sb_csrf="] {
        assert!(
            !cookies.contains(ours),
            "{ours} reached the upstream: {cookies}"
        );
    }
    // Paths the upstream could read differently are refused.
    for tricky in [
        "/legacy/..%2Fapi/data",
        "/public/..;/legacy/page",
        "/legacy/a%2fb",
    ] {
        let r = alice.get(format!("{base}{tricky}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{tricky}");
    }
    assert_eq!(one(&e, "x-auth-request-sub"), env.bridge.alice_sub);
    assert_eq!(one(&e, "x-auth-request-groups"), "staff,ops");
    assert_eq!(one(&e, "x-auth-request-email"), "alice@example.test");
    let minted = one(&e, "authorization").to_owned();
    let claims = verify_bearer(&minted, &base, &base).await;
    assert_eq!(claims["sub"], env.bridge.alice_sub);

    // The longest prefix wins; the token cookie proves the API route.
    let e = echo(alice.get(format!("{base}/api/data"))).await;
    assert_eq!(e["app"], "api");
    assert_eq!(one(&e, "host"), env.api.addr);
    assert_eq!(one(&e, "x-auth-request-user"), "alice");
    assert_eq!(one(&e, "authorization"), minted);

    // bob (no email, no groups): client-sent values do not fill the gap.
    let bob = browser();
    login(&bob, &base, "bob").await;
    let e = echo(
        bob.get(format!("{base}/legacy/page"))
            .header("X-Auth-Request-Email", "admin@evil.example")
            .header("X-Auth-Request-Groups", "admins"),
    )
    .await;
    assert_eq!(one(&e, "x-auth-request-user"), "bob");
    assert!(header(&e, "x-auth-request-email").is_empty(), "{e}");
    assert!(header(&e, "x-auth-request-groups").is_empty(), "{e}");

    // A bearer-authenticated request keeps its own token.
    let r = alice
        .post(format!("{base}/token?delivery=body"))
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let e = echo(
        reqwest::Client::new()
            .get(format!("{base}/api/data"))
            .bearer_auth(&token)
            .header("X-Auth-Request-User", "admin"),
    )
    .await;
    assert_eq!(one(&e, "authorization"), format!("Bearer {token}"));
    assert_eq!(one(&e, "x-auth-request-user"), "alice");

    // Shadow rules as in the library layer.
    let before = env.bridge.shadow_disagreements().await;
    let r = reqwest::Client::new()
        .get(format!("{base}/shadow/page"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "shadow enforces the session");
    assert_eq!(env.bridge.shadow_disagreements().await, before + 1.0);

    // CSRF as in the library layer.
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
            .header("origin", &base)
            .body("x=1"),
    )
    .await;
    assert_eq!(
        (e["method"].as_str(), e["body"].as_str()),
        (Some("POST"), Some("x=1"))
    );

    // An `either` route authenticated by the session alone gets the token
    // cookie minted on the way back, as behind the library layer.
    let session_only = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = session_only
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"username": "bob", "password": super::env::PASSWORD}))
        .send()
        .await
        .unwrap();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("sb_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap();
    let r = session_only
        .get(format!("{base}/other"))
        .header("cookie", format!("sb_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("sb_token=")),
        "no token cookie minted for the either route"
    );

    let ok = env
        .bridge
        .requests(&[
            ("rule", "/api/*"),
            ("credential", "token_cookie"),
            ("outcome", "ok"),
        ])
        .await;
    assert!(ok >= 1.0);
}

pub async fn bodies_stream_both_ways() {
    let env = start().await;
    let base = env.bridge.service.url.clone();

    // Response: the first chunk arrives while the upstream still holds
    // back the rest.
    let r = reqwest::get(format!("{base}/api/slow")).await.unwrap();
    assert_eq!(r.status(), 401);
    let alice = browser();
    login(&alice, &base, "alice").await;
    let mut r = alice.get(format!("{base}/api/slow")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("the first chunk must arrive before the upstream finishes (no buffering)")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first\n");
    env.api.signals.release.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"rest\n");

    // A large download goes through whole.
    let r = alice
        .get(format!("{base}/api/download?mib=24"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r;
    let (mut n, mut hash, mut expected) = (0usize, Fnv::new(), Fnv::new());
    while let Some(c) = stream.chunk().await.unwrap() {
        hash.update(&c);
        n += c.len();
    }
    let total = 24 << 20;
    expected.update(&(0..total).map(pattern).collect::<Vec<u8>>());
    assert_eq!((n, hash.0), (total, expected.0));

    // Request: the upstream sees the first chunk of a chunked upload before
    // the client has sent the rest; then 16 MiB arrive intact.
    let mut socket = tokio::net::TcpStream::connect(env.bridge.addr())
        .await
        .unwrap();
    let head = format!(
        "POST /public/upload HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        env.bridge.addr()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let total = 16 << 20;
    let body: Vec<u8> = (0..total).map(pattern).collect();
    let mut sent = Fnv::new();
    let first = &body[..1024];
    socket
        .write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .await
        .unwrap();
    socket.write_all(first).await.unwrap();
    socket.write_all(b"\r\n").await.unwrap();
    socket.flush().await.unwrap();
    sent.update(first);
    tokio::time::timeout(
        Duration::from_secs(10),
        env.legacy.signals.first_chunk.notified(),
    )
    .await
    .expect("the upstream must see the first chunk while the upload goes on (no buffering)");
    // An upload that lasts longer than `response_timeout` (1 s here) is not
    // cut off: the deadline runs from the end of the body.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for chunk in body[1024..].chunks(256 << 10) {
        socket
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        socket.write_all(chunk).await.unwrap();
        socket.write_all(b"\r\n").await.unwrap();
        sent.update(chunk);
    }
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json = response.split("\r\n\r\n").nth(1).unwrap();
    // The body may be chunked: take the JSON object out of it.
    let json = &json[json.find('{').unwrap()..=json.rfind('}').unwrap()];
    let got: Value = serde_json::from_str(json).unwrap();
    assert_eq!(got["bytes"], total);
    assert_eq!(got["hash"], sent.0.to_string());
}

pub async fn dead_and_hanging_upstreams() {
    let env = start().await;
    let base = env.bridge.service.url.clone();
    let client = reqwest::Client::new();

    let r = client.get(format!("{base}/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "bad_gateway");
    assert!(
        !text.contains("127.0.0.1") && !text.to_lowercase().contains("refused"),
        "internals leaked: {text}"
    );

    let started = Instant::now();
    let r = client.get(format!("{base}/hang/x")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "504 after {waited:?} with a 1 s response timeout"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "gateway_timeout");

    // The proxy still works afterwards.
    let e = echo(client.get(format!("{base}/public/x"))).await;
    assert_eq!(e["app"], "legacy");
}
