//! Routes an upstream reads differently from the bridge (issue 10, items 2,
//! 3 and 9): case, percent-encoding, NUL and control characters, trailing
//! dots and spaces, fullwidth letters, double encoding, HEAD for GET and
//! method overrides, sent byte for byte through each front (nginx
//! `auth_request`, Caddy `forward_auth`, the bridge's own proxy) to an
//! upstream that reads them as loosely as real applications do
//! ([`super::lenient`]). An anonymous request that reaches a protected
//! handler is a bypass; there must be none.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::env::{Addrs, Bridge, Front, browser, login};
use super::lenient::Lenient;
use crate::common::free_port;

/// The issue's policy: everything public but the admin pages (session),
/// the API (token), GET-only reports (session) and item deletion (session).
const POLICY: &str = r#"
[policy]
default = "public"
[[policy.routes]]
path = "/admin/*"
mode = "session"
[[policy.routes]]
path = "/api/*"
mode = "token"
[[policy.routes]]
path = "/reports/*"
methods = ["GET"]
mode = "session"
[[policy.routes]]
path = "/items/*"
methods = ["DELETE", "PUT", "PATCH"]
mode = "session"
"#;

/// Request targets, as raw bytes on the request line.
const TARGETS: &[&str] = &[
    "/ADMIN/secret",
    "/Admin/x",
    "/aDmIn",
    "/ADMIN",
    "/admin%00",
    "/admin%00/x",
    "/admin%0a/x",
    "/admin%0d%0a",
    "/admin%09/x",
    "/admin%7f/x",
    "/admin%20/x",
    "/admin%20",
    "/admin./x",
    "/admin.",
    "/admin.../x",
    "/admin%2e/x",
    "/admin%2E",
    "/ADMIN%2e%2e/x",
    "/%41dmin/x",
    "/%61dmin/x",
    "/adm%49n/x",
    "/%2561dmin/x",
    "/%252e%252e/admin/x",
    "//admin/x",
    "///admin",
    "/./admin/x",
    "/public/../admin/x",
    "/public/..%2fadmin/x",
    "/public%2f..%2fadmin/x",
    "/admin;x/y",
    "/admin%3b/x",
    "/admin\\x",
    "/admin%5cx",
    "/\u{ff41}dmin/x",
    "/\u{ff21}\u{ff24}\u{ff2d}\u{ff29}\u{ff2e}/x",
    "/%EF%BD%81dmin/x",
    "/admin%ef%bc%8fx",
    "/%ef%bc%8eadmin",
    "/admin%c0%ae/x",
    "/admin%e2%80%8b/x",
    "/API/data",
    "/Api/x",
    "/api%00",
    "/api./x",
    "/%EF%BD%81pi/x",
    "/REPORTS/x",
];

/// Whether a handler behind the policy's protected rules ran for `method`.
fn protected(route: &str) -> bool {
    matches!(
        route,
        "admin" | "api" | "reports" | "items:DELETE" | "items:PUT" | "items:PATCH"
    )
}

/// One raw HTTP/1.1 exchange: the status and the `X-Route` the upstream
/// answered with (if any).
async fn raw(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        socket.read_to_end(&mut response),
    )
    .await;
    assert!(read.is_ok(), "{method} {target}: no answer within 15 s");
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let route = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("x-route"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, route)
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Nginx,
    Caddy,
    Proxy,
}

/// The bridge (and front) for `kind`, in front of `upstream`; the base
/// address requests go to.
fn start(kind: Kind, upstream: &Lenient) -> (Bridge, Option<Front>, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    match kind {
        Kind::Proxy => {
            let proxy = format!(
                "[proxy]\n[[proxy.upstreams]]\nprefix = \"/\"\nurl = \"http://{}\"\n",
                upstream.addr
            );
            let bridge = Bridge::start_with_policy(None, POLICY, &proxy);
            let addr = bridge.addr().to_owned();
            (bridge, None, addr)
        }
        Kind::Nginx | Kind::Caddy => {
            let bridge = Bridge::start_with_policy(Some(&format!("http://{listen}")), POLICY, "");
            let addrs = Addrs {
                listen: &listen,
                bridge: bridge.addr(),
                legacy: &upstream.addr,
                api: &upstream.addr,
            };
            let front = match kind {
                Kind::Nginx => Front::nginx(&addrs),
                _ => Front::caddy(&addrs),
            };
            (bridge, Some(front), listen)
        }
    }
}

/// Every bypass through `kind`, as `METHOD target -> route`.
pub async fn bypasses(kind: Kind) -> Vec<String> {
    let upstream = Lenient::start().await;
    let (_bridge, front, addr) = start(kind, &upstream);
    let log = || front.as_ref().map(Front::log).unwrap_or_default();

    // The test can see a protected handler: a signed-in user reaches it,
    // an anonymous one is refused, a public page is served.
    let base = format!("http://{addr}");
    let alice = browser();
    login(&alice, &base, "alice").await;
    let r = alice
        .get(format!("{base}/admin/secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", log());
    assert_eq!(r.headers()["x-route"], "admin");
    let (status, _) = raw(&addr, "GET", "/admin/secret", &[]).await;
    assert_eq!(status, 401, "{kind:?}: /admin/secret without a session");
    let (status, route) = raw(&addr, "GET", "/public/x", &[]).await;
    assert_eq!(
        (status, route.as_str()),
        (200, "other"),
        "{kind:?}\n{}",
        log()
    );

    let mut found = Vec::new();
    let mut check = |method: &str, target: &str, (status, route): (u16, String)| {
        if (200..300).contains(&status) && protected(&route) {
            found.push(format!("{method} {target} -> {route}"));
        }
    };
    for target in TARGETS {
        for method in ["GET", "HEAD"] {
            check(method, target, raw(&addr, method, target, &[]).await);
        }
    }
    // HEAD runs the GET handler: a GET-only rule covers it.
    for target in ["/reports/x", "/reports"] {
        check("HEAD", target, raw(&addr, "HEAD", target, &[]).await);
    }
    // Method overrides: the policy judges POST (public here), the
    // application would run DELETE.
    for (name, value) in [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "PUT"),
        ("x-http-method-override", "patch"),
        ("X_HTTP_Method_Override", "DELETE"),
    ] {
        let outcome = raw(&addr, "POST", "/items/1", &[(name, value)]).await;
        check("POST", &format!("/items/1 ({name}: {value})"), outcome);
    }
    eprintln!("paths, {kind:?}: {} bypasses: {found:?}", found.len());
    found
}

/// `/auth/verify` refuses a check whose request carries an identity header
/// spelled with `_` or a method override: a front that passed them to the
/// upstream could not be trusted with the answer.
pub async fn forward_auth_refuses_disguised_headers() {
    let bridge = Bridge::start_with_policy(None, POLICY, "");
    let addr = bridge.addr().to_owned();
    let check = [
        ("X-Forwarded-Uri", "/public/x"),
        ("X-Forwarded-Method", "GET"),
    ];
    let (status, _) = raw(&addr, "GET", "/auth/verify", &check).await;
    assert_eq!(status, 200, "a plain check passes");
    for extra in [
        ("X_Auth_Request_User", "admin"),
        ("x-auth-request_email", "admin@evil.example"),
        ("X_AUTH_REQUEST_ANYTHING", "1"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X_HTTP_Method_Override", "DELETE"),
        ("X-Method-Override", "PUT"),
    ] {
        let mut headers = check.to_vec();
        headers.push(extra);
        let (status, _) = raw(&addr, "GET", "/auth/verify", &headers).await;
        assert_eq!(status, 400, "{extra:?}");
    }
}
