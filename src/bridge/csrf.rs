//! CSRF protection for cookie-authenticated state changes.
//!
//! A browser attaches cookies to cross-site requests on its own, so a
//! cookie-authenticated `POST`/`PUT`/`PATCH`/`DELETE` must prove it comes
//! from our own pages by one of:
//!
//! - `Sec-Fetch-Site: same-origin` (set by every current browser, not
//!   settable by page scripts);
//! - an `Origin` header equal to the public URL's origin or a configured
//!   trusted origin;
//! - the double-submit token: a header equal to the CSRF cookie (compared in
//!   constant time), for clients that send neither header.
//!
//! A request with a cross-site `Sec-Fetch-Site` or a foreign `Origin` is
//! refused even if it carries the token. Bearer-authenticated requests are
//! exempt: no browser attaches an `Authorization` header on its own.

use axum::http::{HeaderMap, HeaderName, Method};
use subtle::ConstantTimeEq;

use super::cookies;

/// The CSRF rules of one service.
#[derive(Debug, Clone)]
pub struct Csrf {
    origins: Vec<String>,
    header: HeaderName,
    cookie: String,
}

impl Csrf {
    /// Accept `own_origin` (`scheme://host[:port]` of the public URL) and
    /// `trusted`; double-submit via `header` and cookie `cookie`.
    pub fn new(own_origin: String, trusted: &[String], header: HeaderName, cookie: String) -> Self {
        let mut origins = vec![own_origin];
        origins.extend(trusted.iter().cloned());
        Self {
            origins,
            header,
            cookie,
        }
    }

    /// Whether `method` changes state (and so needs a check).
    pub fn is_unsafe(method: &Method) -> bool {
        !matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        )
    }

    /// Whether a cookie-authenticated request with these headers may change
    /// state.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let origin = headers
            .get(axum::http::header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if matches!(site, Some("cross-site" | "same-site")) {
            return false;
        }
        if let Some(origin) = origin {
            // `null` (sandboxed frames, some redirects) is never ours.
            return self.origins.iter().any(|o| o == origin);
        }
        if site == Some("same-origin") {
            return true;
        }
        self.double_submit(headers)
    }

    /// Whether a login form post may proceed: refused only when the browser
    /// says it comes from another site (login CSRF); clients that send no
    /// such headers (scripts, the PHP app's backend) may log in.
    pub fn allows_login(&self, headers: &HeaderMap) -> bool {
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if matches!(site, Some("cross-site" | "same-site")) {
            return false;
        }
        match headers
            .get(axum::http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            Some(origin) => self.origins.iter().any(|o| o == origin),
            None => true,
        }
    }

    fn double_submit(&self, headers: &HeaderMap) -> bool {
        let Some(sent) = headers.get(&self.header).map(|v| v.as_bytes()) else {
            return false;
        };
        let Some(cookie) = cookies::read(headers, &self.cookie) else {
            return false;
        };
        sent.len() >= 16 && bool::from(sent.ct_eq(cookie.as_bytes()))
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn csrf() -> Csrf {
        Csrf::new(
            "https://auth.example".into(),
            &["https://app.example".into()],
            HeaderName::from_static("x-csrf-token"),
            "sb_csrf".into(),
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_proofs_pass_and_foreign_ones_fail() {
        let c = csrf();
        assert!(c.allows(&headers(&[("origin", "https://auth.example")])));
        assert!(c.allows(&headers(&[("origin", "https://app.example")])));
        assert!(c.allows(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!c.allows(&headers(&[("origin", "https://evil.example")])));
        assert!(!c.allows(&headers(&[("origin", "null")])));
        assert!(!c.allows(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://auth.example")
        ])));
        assert!(!c.allows(&headers(&[])));
    }

    #[test]
    fn double_submit_needs_an_exact_match() {
        let c = csrf();
        let token = "0123456789abcdef0123";
        assert!(c.allows(&headers(&[
            ("x-csrf-token", token),
            ("cookie", "sb_csrf=0123456789abcdef0123")
        ])));
        assert!(!c.allows(&headers(&[
            ("x-csrf-token", "0123456789abcdef0124"),
            ("cookie", "sb_csrf=0123456789abcdef0123")
        ])));
        assert!(!c.allows(&headers(&[
            ("x-csrf-token", "short"),
            ("cookie", "sb_csrf=short")
        ])));
        assert!(!c.allows(&headers(&[
            ("x-csrf-token", token),
            ("origin", "https://evil.example"),
            ("cookie", "sb_csrf=0123456789abcdef0123")
        ])));
    }
}
