//! `/auth/verify`: the forward-auth endpoint.
//!
//! The proxy in front of an application asks, for every request, whether
//! it may pass; the request it describes — the *original* one — is judged
//! by the route policy exactly as the library layer would judge it:
//!
//! | proxy | original method | original URI |
//! | --- | --- | --- |
//! | Caddy `forward_auth`, Traefik ForwardAuth | `X-Forwarded-Method` | `X-Forwarded-Uri` |
//! | nginx `auth_request` (set in its config) | `X-Original-Method` | `X-Original-URI` |
//!
//! Both are required (400 otherwise: a misconfigured proxy fails closed).
//! A proxy passes the client's other headers along, so when both pairs are
//! present they must agree, or a client could name another path (or a safe
//! method) than the one it requests.
//!
//! The answer:
//!
//! - **200** with the identity headers and `Authorization` (see
//!   `Gateway::upstream_authorization`) for the proxy to copy onto the
//!   upstream request, each present but empty when there is nothing to say
//!   (an anonymous request to a public route, a user without an email);
//! - **401** / **403** / **503** with the library layer's JSON body;
//! - for a browser navigation the policy sends to login
//!   (`policy.unauthenticated = "redirect"`), the login URL with
//!   `next` = the original URI, escaped, in `X-Auth-Request-Login` — and as
//!   a **303** with `Location` for Caddy and Traefik, which pass a refusal
//!   through to the client, but as a 401 for nginx, whose `auth_request`
//!   understands nothing else (its config turns that into the redirect with
//!   `error_page 401 = @login`).
//!
//! A request carrying an identity header under another spelling
//! (`X_Auth_Request_User`, which PHP reads as `X-Auth-Request-User`) or a
//! method override (`X-HTTP-Method-Override`, …) is refused with **400**
//! `ambiguous_header`: the shipped nginx and Caddy configs remove such
//! headers before asking, so this only fires behind a front that would pass
//! them to the upstream, where the answer could not be trusted.
//!
//! Unlike the library layer, forward-auth sets no exchange cookies on
//! `either` routes: the proxies do not pass a 200's cookies to the client,
//! so a linked session would be created on every request. The upstream gets
//! the identity headers and the bearer token instead.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{Decision, decide, spellings};
use crate::bridge::layer;
use crate::bridge::rejection::error_response;
use crate::service::AppState;

/// The login URL (with `next`) for a refused browser navigation.
const LOGIN_HEADER: HeaderName = HeaderName::from_static("x-auth-request-login");
/// Longest original URI accepted.
const MAX_URI: usize = 8 * 1024;

/// Which kind of proxy asked, by the headers it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// Passes any non-2xx answer to the client (Caddy, Traefik).
    PassThrough,
    /// Understands 2xx, 401 and 403 only (nginx `auth_request`).
    Nginx,
}

/// The request the proxy asks about.
#[derive(Debug)]
struct Original {
    method: Method,
    uri: Uri,
    asker: Asker,
}

/// `ANY /auth/verify`.
pub(super) async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let original = match Original::from_headers(&headers) {
        Ok(o) => o,
        Err(message) => return bad_request(message),
    };
    if let Some(response) = ambiguous_headers(&state.gateway.inner.headers, &headers) {
        return response;
    }
    let rule = match state
        .bridge
        .policy()
        .judge(&original.method, original.uri.path())
    {
        Ok(rule) => rule.clone(),
        Err(rejection) => return rejection.into_response(),
    };
    let bridge = &state.bridge;
    let gateway = &state.gateway;
    tracing::debug!(
        method = %original.method,
        path = %original.uri.path(),
        host = headers.get("x-forwarded-host").and_then(|v| v.to_str().ok()).unwrap_or("-"),
        "forward-auth"
    );
    match decide(bridge, &rule, &original.method, &headers).await {
        Decision::Allow(allowed) => {
            let mut response = StatusCode::OK.into_response();
            let out = response.headers_mut();
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(a) = &allowed.authenticated {
                gateway.headers().insert(&a.identity, out);
                if let Some(v) = gateway.upstream_authorization(bridge, a, &headers) {
                    out.insert(header::AUTHORIZATION, v);
                }
            }
            // Every header a proxy may copy is present, empty when there is
            // nothing to say: Caddy before 2.9 copies a header missing from
            // this answer as its literal placeholder text; an empty one it
            // copies as empty, and nginx drops.
            for name in gateway.headers().names().chain([&header::AUTHORIZATION]) {
                if !out.contains_key(name) {
                    out.insert(name.clone(), HeaderValue::from_static(""));
                }
            }
            if allowed.clear_cookies {
                layer::clear_cookies(bridge, out);
            }
            response
        }
        Decision::Refuse(rejection) => {
            // `refuse` reads the method, URI and headers of the request it
            // refuses: give it the original one.
            let (mut parts, ()) = Request::builder()
                .method(original.method.clone())
                .uri(original.uri.clone())
                .body(())
                .unwrap_or_default()
                .into_parts();
            parts.headers = headers;
            let response = layer::refuse(bridge, &rule, &parts, rejection.clone());
            let Some(login) = response
                .headers()
                .get(header::LOCATION)
                .filter(|_| response.status() == StatusCode::SEE_OTHER)
                .cloned()
            else {
                return response;
            };
            let mut response = match original.asker {
                Asker::PassThrough => response,
                Asker::Nginx => {
                    let mut unauthorized = rejection.into_response();
                    for cookie in response.headers().get_all(header::SET_COOKIE) {
                        unauthorized
                            .headers_mut()
                            .append(header::SET_COOKIE, cookie.clone());
                    }
                    unauthorized
                }
            };
            response.headers_mut().insert(LOGIN_HEADER, login);
            response
        }
    }
}

impl Original {
    /// Read the original request from the proxy's headers; the error is a
    /// fixed message (nothing the client sent is echoed).
    ///
    /// A proxy sets its own pair of headers but passes the client's others
    /// along, so a client could add the *other* proxy's pair to have
    /// another path (or a safe method) judged: when both pairs are present
    /// they must agree. A method is required: without one, CSRF could not
    /// be judged (Caddy's check request is always a GET).
    fn from_headers(headers: &HeaderMap) -> Result<Self, &'static str> {
        let one_of = |a: &str, b: &str| match (headers.get(a), headers.get(b)) {
            (Some(x), Some(y)) if x != y => Err("conflicting original request headers"),
            (x, y) => Ok(x.or(y)),
        };
        let uri = one_of("x-forwarded-uri", "x-original-uri")?
            .ok_or("X-Forwarded-Uri or X-Original-URI is required")?;
        let uri = parse_uri(uri.as_bytes()).ok_or("the original URI is not a valid path")?;
        let method = one_of("x-forwarded-method", "x-original-method")?
            .ok_or("X-Forwarded-Method or X-Original-Method is required")?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| "the original method is not a valid method")?;
        let asker = if headers.contains_key("x-original-uri") {
            Asker::Nginx
        } else {
            Asker::PassThrough
        };
        Ok(Self { method, uri, asker })
    }
}

/// An origin-form URI (`/path?query`). Proxies pass the raw request
/// target, which may hold bytes the `http` crate refuses (`{`, `|`, …):
/// those are percent-encoded first, as a browser would have done.
fn parse_uri(raw: &[u8]) -> Option<Uri> {
    if raw.is_empty() || raw.len() > MAX_URI || raw[0] != b'/' || raw.starts_with(b"//") {
        return None;
    }
    if let Ok(uri) = Uri::try_from(raw)
        && uri.scheme().is_none()
        && uri.authority().is_none()
    {
        return Some(uri);
    }
    let mut encoded = String::with_capacity(raw.len() * 2);
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::try_from(encoded)
        .ok()
        .filter(|u| u.scheme().is_none() && u.authority().is_none())
}

/// 400 `ambiguous_header` when the request carries an identity header
/// under a spelling the front would not strip, or a method override (the
/// upstream could run another method's handler than the one judged).
fn ambiguous_headers(identity: &super::IdentityHeaders, headers: &HeaderMap) -> Option<Response> {
    let disguised = spellings::disguised(headers, |f| spellings::is_identity(identity, f)).next();
    let overridden = headers
        .keys()
        .find(|name| spellings::METHOD_OVERRIDES.contains(&&*spellings::folded(name)));
    let name = disguised.or(overridden)?;
    // The name is the client's: logged at debug, never echoed.
    tracing::debug!(header = %name, "forward-auth refused an ambiguous header");
    Some(error_response(
        StatusCode::BAD_REQUEST,
        "ambiguous_header",
        "the request carries an identity header under another spelling, or a method override",
    ))
}

fn bad_request(message: &'static str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_original_request_comes_from_the_proxy_headers() {
        let caddy = Original::from_headers(&headers(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/api/x?a=1"),
        ]))
        .unwrap();
        assert_eq!(caddy.method, Method::POST);
        assert_eq!(caddy.uri.path(), "/api/x");
        assert_eq!(caddy.uri.query(), Some("a=1"));
        assert_eq!(caddy.asker, Asker::PassThrough);

        let nginx = Original::from_headers(&headers(&[
            ("x-original-uri", "/legacy/a b<c>"),
            ("x-original-method", "DELETE"),
        ]))
        .unwrap();
        assert_eq!(nginx.method, Method::DELETE);
        assert_eq!(nginx.uri.path(), "/legacy/a%20b%3Cc%3E");
        assert_eq!(nginx.asker, Asker::Nginx);

        let agreeing = Original::from_headers(&headers(&[
            ("x-original-uri", "/a"),
            ("x-forwarded-uri", "/a"),
            ("x-original-method", "GET"),
        ]))
        .unwrap();
        assert_eq!(agreeing.asker, Asker::Nginx);
    }

    #[test]
    fn bad_or_conflicting_originals_are_refused() {
        for h in [
            headers(&[]),
            headers(&[("x-forwarded-uri", "/")]),
            headers(&[("x-forwarded-method", "GET")]),
            headers(&[
                ("x-forwarded-uri", "http://evil.example/"),
                ("x-forwarded-method", "GET"),
            ]),
            headers(&[
                ("x-forwarded-uri", "//evil.example/"),
                ("x-forwarded-method", "GET"),
            ]),
            headers(&[
                ("x-forwarded-uri", "relative"),
                ("x-forwarded-method", "GET"),
            ]),
            headers(&[("x-forwarded-uri", "/"), ("x-forwarded-method", "GE T")]),
            // A client adding the other proxy's headers.
            headers(&[
                ("x-original-uri", "/legacy/secret"),
                ("x-forwarded-uri", "/"),
                ("x-original-method", "GET"),
            ]),
            headers(&[
                ("x-forwarded-uri", "/either"),
                ("x-forwarded-method", "POST"),
                ("x-original-method", "GET"),
            ]),
        ] {
            assert!(Original::from_headers(&h).is_err(), "{h:?}");
        }
    }
}
