//! The reverse proxy: requests no bridge route serves go to the upstream
//! with the longest matching path prefix, judged by the same route policy
//! as `/auth/verify`.
//!
//! What an upstream receives:
//!
//! - never a client-sent identity header (the configured names and every
//!   `X-Auth-Request-*` are removed, in every spelling: `X_Auth_Request_User`
//!   reaches PHP as the same `HTTP_X_AUTH_REQUEST_USER`), but the bridge's
//!   own for an authenticated request;
//! - no header whose name contains `_` unless `allow_underscore_headers`
//!   (see [`super::spellings`]), and never one that folds to a header the
//!   proxy manages;
//! - no method override (`X-HTTP-Method-Override`, …): the policy judged
//!   the request's real method;
//! - an `Authorization` header only when the bridge vouches for it: the
//!   client's own bearer token when that proved the identity, or the token
//!   minted from the session with `forward_auth.bearer = true`. Any other
//!   client `Authorization` (an unverified one on a session route, a
//!   refused one on a public route) is removed;
//! - no hop-by-hop headers (`Connection` and the headers it lists,
//!   `Keep-Alive`, `TE`, `Upgrade`, …: upgrades are not proxied);
//! - `X-Forwarded-For` (the client address appended), `X-Forwarded-Proto`
//!   (the public URL's scheme) and `X-Forwarded-Host` (the client's `Host`);
//!   `Host` is the upstream's.
//!
//! Bodies stream both ways. An upstream that cannot be reached answers 502,
//! one that does not connect or answer its response head in time 504, both
//! with a fixed JSON body; details go to the log.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::ProxyConfig;
use super::{Decision, IdentityHeaders, decide, spellings};
use crate::bridge::{Mode, layer, policy};
use crate::service::AppState;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus the proxy ones that never travel further.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The upstreams and the HTTP client that reaches them.
pub(super) struct Proxy {
    client: Client<HttpConnector, Body>,
    /// Longest prefix first.
    upstreams: Vec<Upstream>,
    response_timeout: Duration,
    proto: HeaderValue,
    allow_underscore_headers: bool,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstreams)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Upstream {
    prefix: String,
    /// `http://host:port` + the URL's path without its trailing slash.
    base: String,
    strip_prefix: bool,
}

impl Proxy {
    /// The proxy for a validated `[proxy]` section; `None` without
    /// upstreams.
    pub(super) fn new(cfg: &ProxyConfig, issuer: &str) -> Option<Self> {
        if cfg.upstreams.is_empty() {
            return None;
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let mut upstreams: Vec<Upstream> = cfg
            .upstreams
            .iter()
            .map(|u| {
                let origin = u.url.origin().ascii_serialization();
                Upstream {
                    prefix: u.prefix.clone(),
                    base: format!("{origin}{}", u.url.path().trim_end_matches('/')),
                    strip_prefix: u.strip_prefix,
                }
            })
            .collect();
        upstreams.sort_by_key(|u| std::cmp::Reverse(u.prefix.len()));
        let proto = if issuer.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        Some(Self {
            client,
            upstreams,
            response_timeout: cfg.response_timeout,
            proto: HeaderValue::from_static(proto),
            allow_underscore_headers: cfg.allow_underscore_headers,
        })
    }

    /// The upstream for a normalized path: the longest prefix matching on
    /// whole segments.
    fn pick(&self, path: &str) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .find(|u| matches_prefix(&u.prefix, path))
    }
}

fn matches_prefix(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Upstream {
    /// The upstream URI for a request URI. The raw path is kept (the
    /// upstream normalizes it as it always does); the upstream was picked,
    /// like the policy rule, by the normalized path.
    fn uri_for(&self, uri: &Uri) -> Option<Uri> {
        let path = uri.path();
        let path = match self.strip_prefix {
            true if self.prefix != "/" => match path.strip_prefix(self.prefix.as_str()) {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => path,
            },
            _ => path,
        };
        let target = match uri.query() {
            Some(q) => format!("{}{path}?{q}", self.base),
            None => format!("{}{path}", self.base),
        };
        Uri::try_from(target).ok()
    }
}

/// The fallback handler: proxy the request.
pub(super) async fn forward(State(state): State<AppState>, req: Request) -> Response {
    let Some(proxy) = state.gateway.inner.proxy.as_ref() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    let (mut parts, body) = req.into_parts();
    let rule = match state.bridge.policy().judge(&parts.method, parts.uri.path()) {
        Ok(rule) => rule.clone(),
        Err(rejection) => return rejection.into_response(),
    };
    let normalized = policy::normalize(parts.uri.path());
    let Some(upstream) = proxy.pick(&normalized) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    let bridge = &state.bridge;
    let allowed = match decide(bridge, &rule, &parts.method, &parts.headers).await {
        Decision::Allow(allowed) => allowed,
        Decision::Refuse(rejection) => return layer::refuse(bridge, &rule, &parts, rejection),
    };
    let Some(uri) = upstream.uri_for(&parts.uri) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request path cannot be forwarded",
        );
    };

    let gateway = &state.gateway;
    let authorization = allowed
        .authenticated
        .as_ref()
        .and_then(|a| gateway.upstream_authorization(bridge, a, &parts.headers));
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = &mut parts.headers;
    let host = headers.remove(header::HOST);
    strip_underscored(headers, gateway.headers(), proxy.allow_underscore_headers);
    strip_hop_by_hop(headers);
    gateway.headers().strip(headers);
    headers.remove(header::AUTHORIZATION);
    strip_spoofable(headers);
    strip_bridge_cookies(headers, bridge.cookies());
    if let Some(a) = &allowed.authenticated {
        gateway.headers().insert(&a.identity, headers);
    }
    if let Some(v) = authorization {
        headers.insert(header::AUTHORIZATION, v);
    }
    set_forwarded(headers, client_ip, host, &proxy.proto);
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let (body, sent) = super::sent::signal_end(body);
    let upstream_req = Request::from_parts(parts, body);

    // `response_timeout` runs from the end of the request body: an upload
    // streams for as long as it takes (the server's body-read timeout
    // guards against a client that stalls), then the upstream has that
    // long to answer. An upstream may also answer before the body ends.
    let request = proxy.client.request(upstream_req);
    tokio::pin!(request);
    let result = tokio::select! {
        biased;
        r = &mut request => Ok(r),
        _ = sent => tokio::time::timeout(proxy.response_timeout, &mut request).await,
    };
    let upstream_response = match result {
        Ok(Ok(r)) => r,
        Ok(Err(err)) if is_timeout(&err) => {
            tracing::warn!(upstream = %upstream.prefix, error = %crate::error_chain(&err), "upstream connect timed out");
            return timeout_response();
        }
        Ok(Err(err)) => {
            tracing::warn!(upstream = %upstream.prefix, error = %crate::error_chain(&err), "upstream unreachable");
            return error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream server could not be reached",
            );
        }
        Err(_) => {
            tracing::warn!(upstream = %upstream.prefix, timeout = ?proxy.response_timeout, "upstream did not answer in time");
            return timeout_response();
        }
    };
    let (mut head, incoming) = upstream_response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let mut response = Response::from_parts(head, Body::new(incoming));
    if let Some(a) = &allowed.authenticated
        && rule.mode == Mode::Either
    {
        layer::exchange(bridge, a, response.headers_mut()).await;
    }
    if allowed.clear_cookies {
        layer::clear_cookies(bridge, response.headers_mut());
    }
    response
}

/// Remove hop-by-hop headers, including those `Connection` names.
/// Headers a client could send to make the upstream believe another client
/// address, host or path than the one the policy judged. `X-Forwarded-*`
/// are then set by us.
const SPOOFABLE: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-method",
];

fn strip_spoofable(headers: &mut HeaderMap) {
    for name in SPOOFABLE.iter().chain(spellings::METHOD_OVERRIDES) {
        headers.remove(*name);
    }
}

/// Drop client headers written with `_` (see [`spellings`]); with
/// `allow` only those a CGI-style upstream would read as a header the
/// proxy manages.
fn strip_underscored(headers: &mut HeaderMap, identity: &IdentityHeaders, allow: bool) {
    spellings::strip_underscored(headers, allow, |folded| {
        spellings::is_identity(identity, folded)
            || folded.starts_with("x-forwarded-")
            || SPOOFABLE.contains(&folded)
            || spellings::METHOD_OVERRIDES.contains(&folded)
            || HOP_BY_HOP.contains(&folded)
    });
}

/// The bridge's own cookies (session, token, CSRF, pending OIDC login) are
/// credentials for the bridge, not for upstreams: an upstream that saw them
/// could act as the user at the bridge. Other cookies pass unchanged.
fn strip_bridge_cookies(headers: &mut HeaderMap, cookies: &crate::bridge::Cookies) {
    let ours = [
        cookies.session_name(),
        cookies.token_name(),
        cookies.csrf_name(),
        "sb_oidc",
        "__Host-sb_oidc",
    ];
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !ours.contains(&name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = axum::http::HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn set_forwarded(
    headers: &mut HeaderMap,
    client: Option<std::net::IpAddr>,
    host: Option<HeaderValue>,
    proto: &HeaderValue,
) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    if let Some(ip) = client {
        let prior: Vec<&str> = headers
            .get_all(&XFF)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let value = if prior.is_empty() {
            ip.to_string()
        } else {
            format!("{}, {ip}", prior.join(", "))
        };
        headers.remove(&XFF);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(XFF, v);
        }
    }
    headers.insert("x-forwarded-proto", proto.clone());
    match host {
        Some(h) => headers.insert("x-forwarded-host", h),
        None => headers.remove("x-forwarded-host"),
    };
}

/// Whether a client error comes from a timeout (the connector's connect
/// timeout surfaces as an `io::Error` of kind `TimedOut` in the chain).
fn is_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = e.source();
    }
    false
}

fn timeout_response() -> Response {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        "the upstream server did not answer in time",
    )
}

fn error(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    crate::bridge::rejection::error_response(status, code, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service::gateway::config::UpstreamConfig;

    fn proxy(ups: &[(&str, &str, bool)]) -> Proxy {
        let cfg = ProxyConfig {
            upstreams: ups
                .iter()
                .map(|(p, u, s)| UpstreamConfig {
                    prefix: (*p).into(),
                    url: u.parse().unwrap(),
                    strip_prefix: *s,
                })
                .collect(),
            ..ProxyConfig::default()
        };
        Proxy::new(&cfg, "https://bridge.test").unwrap()
    }

    #[tokio::test]
    async fn the_longest_prefix_wins_on_whole_segments() {
        let p = proxy(&[
            ("/", "http://legacy:80", false),
            ("/api", "http://api:9000/v1/", true),
            ("/api/admin", "http://admin:9001", false),
        ]);
        let pick = |path: &str| p.pick(path).map(|u| u.prefix.clone());
        assert_eq!(pick("/api/x").as_deref(), Some("/api"));
        assert_eq!(pick("/api").as_deref(), Some("/api"));
        assert_eq!(pick("/apiary").as_deref(), Some("/"));
        assert_eq!(pick("/api/admin/users").as_deref(), Some("/api/admin"));
        let api = p.pick("/api/x").unwrap();
        let uri = |s: &str| api.uri_for(&s.parse().unwrap()).unwrap().to_string();
        assert_eq!(uri("/api/x?q=1"), "http://api:9000/v1/x?q=1");
        assert_eq!(uri("/api"), "http://api:9000/v1/");
        let legacy = p.pick("/page").unwrap();
        assert_eq!(
            legacy
                .uri_for(&"/page?a=b".parse().unwrap())
                .unwrap()
                .to_string(),
            "http://legacy/page?a=b"
        );
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn forwarded_headers_append_the_client_and_replace_the_rest() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        set_forwarded(
            &mut h,
            Some("192.0.2.1".parse().unwrap()),
            Some(HeaderValue::from_static("app.example")),
            &HeaderValue::from_static("https"),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.example");
    }
}
