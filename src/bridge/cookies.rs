//! Reading and writing the bridge's cookies.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite as CookieSameSite};
use time::Duration;

use super::config::{CookieConfig, SameSite};

/// Longest cookie value read: our values are short (a 22-character session
/// id, a token of a few KiB); anything longer is not ours.
const MAX_COOKIE_VALUE: usize = 8 * 1024;

/// The bridge's cookie names and attributes.
#[derive(Debug, Clone)]
pub struct Cookies {
    secure: bool,
    session: String,
    token: String,
    csrf: String,
    token_same_site: CookieSameSite,
}

impl Cookies {
    /// Names and attributes from `[cookies]`; `secure` is the resolved
    /// setting.
    pub fn new(cfg: &CookieConfig, secure: bool) -> Self {
        // `__Host-`: the browser accepts the cookie only with Secure, Path=/
        // and no Domain, so a sibling subdomain cannot plant or shadow it.
        let prefix = if secure { "__Host-" } else { "" };
        Self {
            secure,
            session: format!("{prefix}{}", cfg.session_name),
            token: format!("{prefix}{}", cfg.token_name),
            csrf: format!("{prefix}{}", cfg.csrf_name),
            token_same_site: match cfg.token_same_site {
                SameSite::Lax => CookieSameSite::Lax,
                SameSite::Strict => CookieSameSite::Strict,
            },
        }
    }

    /// The session cookie's full name.
    pub fn session_name(&self) -> &str {
        &self.session
    }

    /// The token cookie's full name.
    pub fn token_name(&self) -> &str {
        &self.token
    }

    /// The CSRF cookie's full name.
    pub fn csrf_name(&self) -> &str {
        &self.csrf
    }

    /// Whether cookies are `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    fn build(
        &self,
        name: &str,
        value: String,
        same_site: CookieSameSite,
        http_only: bool,
        max_age: Duration,
    ) -> HeaderValue {
        let cookie = Cookie::build((name.to_owned(), value))
            .path("/")
            .http_only(http_only)
            .secure(self.secure)
            .same_site(same_site)
            .max_age(max_age)
            .build();
        // Names are validated and values are ids, tokens and hex: always a
        // valid header value.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for a session id.
    pub fn set_session(&self, id: String, max_age: Duration) -> HeaderValue {
        self.build(&self.session, id, CookieSameSite::Lax, true, max_age)
    }

    /// `Set-Cookie` for an access token.
    pub fn set_token(&self, token: String, max_age: Duration) -> HeaderValue {
        self.build(&self.token, token, self.token_same_site, true, max_age)
    }

    /// `Set-Cookie` for the CSRF double-submit token: readable by the page's
    /// script (it must copy it into a header), so not HttpOnly.
    pub fn set_csrf(&self, value: String, max_age: Duration) -> HeaderValue {
        self.build(&self.csrf, value, CookieSameSite::Strict, false, max_age)
    }

    /// `Set-Cookie` headers that delete every bridge cookie.
    pub fn clear_all(&self) -> [HeaderValue; 3] {
        [
            self.build(
                &self.session,
                String::new(),
                CookieSameSite::Lax,
                true,
                Duration::ZERO,
            ),
            self.build(
                &self.token,
                String::new(),
                self.token_same_site,
                true,
                Duration::ZERO,
            ),
            self.build(
                &self.csrf,
                String::new(),
                CookieSameSite::Strict,
                false,
                Duration::ZERO,
            ),
        ]
    }
}

/// The value of cookie `name` in the request, if present exactly once and
/// of a sane size. A cookie sent twice (e.g. one planted for a parent
/// domain) is treated as absent: we cannot tell which one is ours.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k.trim() == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim().trim_matches('"'));
            }
        }
    }
    found.filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secure_cookies_use_the_host_prefix_and_safe_attributes() {
        let c = Cookies::new(&CookieConfig::default(), true);
        let v = c
            .set_session("abc".into(), Duration::hours(1))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(v.starts_with("__Host-sb_session=abc"), "{v}");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(v.contains(attr), "{attr} missing in {v}");
        }
        assert!(!v.contains("Domain"));
        let csrf = c
            .set_csrf("x".into(), Duration::hours(1))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            !csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
            "{csrf}"
        );
    }

    #[test]
    fn duplicate_or_oversized_cookies_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; sb=2; b=3"));
        assert_eq!(read(&h, "sb"), Some("2"));
        h.append(header::COOKIE, HeaderValue::from_static("sb=4"));
        assert_eq!(read(&h, "sb"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("sb={}", "x".repeat(9000))).unwrap(),
        );
        assert_eq!(read(&h, "sb"), None);
    }
}
