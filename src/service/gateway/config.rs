//! `[forward_auth]` and `[proxy]`: what the gateway tells upstreams, and
//! where the reverse proxy sends requests.

use std::time::Duration;

use axum::http::HeaderName;
use serde::Deserialize;

use crate::config::Problems;

/// `[forward_auth]`: the `/auth/verify` endpoint and what upstreams are
/// told about the user. The reverse proxy (`[proxy]`) sends the same
/// identity headers and token.
///
/// ```toml
/// [forward_auth]
/// enabled = true                 # serve /auth/verify (default)
/// bearer = true                  # also send `Authorization: Bearer <token>` upstream
/// token_cache_size = 10000
/// [forward_auth.headers]         # identity header names (these are the defaults)
/// user = "X-Auth-Request-User"
/// sub = "X-Auth-Request-Sub"
/// groups = "X-Auth-Request-Groups"   # comma-separated
/// email = "X-Auth-Request-Email"
/// ```
///
/// A value that is not printable ASCII (a username with an accent, say) is
/// left out rather than escaped, and so is a group whose name contains a
/// comma.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ForwardAuthConfig {
    /// Serve `/auth/verify` (any method) for nginx `auth_request`, Caddy
    /// `forward_auth` and Traefik ForwardAuth (default `true`).
    pub enabled: bool,
    /// Identity header names.
    pub headers: IdentityHeaderNames,
    /// Send `Authorization: Bearer <access token>` upstream: a bearer-
    /// authenticated request's own token, else a token minted from the
    /// session (cached per session, minted again when less than a third of
    /// its life is left). Default `false`.
    pub bearer: bool,
    /// How many sessions' upstream tokens are cached (default 10 000).
    pub token_cache_size: usize,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            headers: IdentityHeaderNames::default(),
            bearer: false,
            token_cache_size: 10_000,
        }
    }
}

/// `[forward_auth.headers]`: names of the headers that carry the identity
/// to upstreams. Client-sent headers of these names never reach an upstream
/// through the proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct IdentityHeaderNames {
    /// Username (default `X-Auth-Request-User`).
    pub user: String,
    /// Subject id (default `X-Auth-Request-Sub`).
    pub sub: String,
    /// Groups, comma-separated (default `X-Auth-Request-Groups`).
    pub groups: String,
    /// Email address (default `X-Auth-Request-Email`).
    pub email: String,
}

impl Default for IdentityHeaderNames {
    fn default() -> Self {
        Self {
            user: "X-Auth-Request-User".to_owned(),
            sub: "X-Auth-Request-Sub".to_owned(),
            groups: "X-Auth-Request-Groups".to_owned(),
            email: "X-Auth-Request-Email".to_owned(),
        }
    }
}

/// `[proxy]`: the optional reverse proxy. Requests no bridge route serves
/// go to the upstream with the longest matching prefix, under the same
/// route policy as `/auth/verify`.
///
/// ```toml
/// [proxy]
/// connect_timeout = "5s"
/// response_timeout = "60s"       # until the upstream's response head
/// allow_underscore_headers = false
/// [[proxy.upstreams]]
/// prefix = "/api"                # longest prefix wins
/// url = "http://127.0.0.1:9000"
/// [[proxy.upstreams]]
/// prefix = "/"
/// url = "http://127.0.0.1:8000"
/// strip_prefix = false           # default: the path is sent as it came
/// ```
///
/// Upstreams are plain `http://` (a proxy on the same network); WebSocket
/// and other upgrades are not proxied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Upstreams (none: the proxy is off).
    pub upstreams: Vec<UpstreamConfig>,
    /// Longest wait for a TCP connection to an upstream (default 5 s);
    /// then 504.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait from sending a request until the upstream's response
    /// head (default 60 s); then 504. Bodies stream without a deadline.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Pass client headers whose name contains `_` (default `false`: they
    /// are dropped, as nginx does). CGI, FastCGI (PHP), WSGI and Rack read
    /// `X_Foo` and `X-Foo` as the same `HTTP_X_FOO`, so with `true` an
    /// upstream cannot tell a client's `X_Foo` from a `X-Foo` set by a proxy
    /// on the way; the names the bridge manages (identity headers,
    /// `X-Forwarded-*`, …) are dropped in every spelling regardless.
    pub allow_underscore_headers: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            allow_underscore_headers: false,
        }
    }
}

/// One `[[proxy.upstreams]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// Path prefix, matched on whole segments (`/api` matches `/api` and
    /// `/api/x`, not `/apix`); `/` matches everything.
    pub prefix: String,
    /// `http://host:port[/base]`: the request path is appended to the base.
    pub url: url::Url,
    /// Remove `prefix` from the path before appending it (default `false`).
    #[serde(default)]
    pub strip_prefix: bool,
}

/// Headers an identity header must not be named after: the proxy manages
/// them itself, or they carry credentials.
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-original-uri",
    "x-original-method",
];

impl ForwardAuthConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        let h = &self.headers;
        let names = [
            ("user", &h.user),
            ("sub", &h.sub),
            ("groups", &h.groups),
            ("email", &h.email),
        ];
        let mut seen: Vec<String> = Vec::new();
        for (field, name) in names {
            let hk = format!("{key}.headers.{field}");
            match HeaderName::from_bytes(name.as_bytes()) {
                Err(_) => problems.push(hk, "must be a valid header name"),
                Ok(parsed) if RESERVED.contains(&parsed.as_str()) => {
                    problems.push(hk, "must not name a header the proxy manages")
                }
                // nginx drops such headers, and CGI-style applications could
                // not tell them from their `-` spelling.
                Ok(parsed) if parsed.as_str().contains('_') => {
                    problems.push(hk, "must not contain `_` (use `-`)")
                }
                Ok(parsed) if seen.iter().any(|s| s == parsed.as_str()) => {
                    problems.push(hk, "identity header names must differ")
                }
                Ok(parsed) => seen.push(parsed.as_str().to_owned()),
            }
        }
        if !(1..=1_000_000).contains(&self.token_cache_size) {
            problems.push(
                format!("{key}.token_cache_size"),
                "must be between 1 and 1000000",
            );
        }
    }
}

impl ProxyConfig {
    /// Record problems under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.connect_timeout) {
            problems.push(
                format!("{key}.connect_timeout"),
                "must be between 100ms and 60s",
            );
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(3600))
            .contains(&self.response_timeout)
        {
            problems.push(
                format!("{key}.response_timeout"),
                "must be between 100ms and 1h",
            );
        }
        for (i, up) in self.upstreams.iter().enumerate() {
            let uk = format!("{key}.upstreams[{i}]");
            let p = &up.prefix;
            let valid_prefix = p == "/"
                || (p.starts_with('/')
                    && !p.ends_with('/')
                    && p.split('/')
                        .skip(1)
                        .all(|s| !s.is_empty() && s != "." && s != "..")
                    && p.bytes().all(|b| {
                        b.is_ascii_graphic() && b != b'%' && b != b'?' && b != b'#' && b != b'*'
                    }));
            if !valid_prefix {
                problems.push(
                    format!("{uk}.prefix"),
                    "must be `/` or a path like `/api` (no trailing slash, wildcards or dot segments)",
                );
            }
            if self.upstreams[..i].iter().any(|o| o.prefix == *p) {
                problems.push(format!("{uk}.prefix"), "another upstream has this prefix");
            }
            let u = &up.url;
            if u.scheme() != "http"
                || u.host_str().is_none()
                || u.query().is_some()
                || u.fragment().is_some()
                || !u.username().is_empty()
                || u.password().is_some()
            {
                problems.push(
                    format!("{uk}.url"),
                    "must be an http:// URL with a host and no query, fragment or credentials",
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn upstream(prefix: &str, url: &str) -> UpstreamConfig {
        UpstreamConfig {
            prefix: prefix.into(),
            url: url.parse().unwrap(),
            strip_prefix: false,
        }
    }

    fn problems_of(cfg: &ProxyConfig) -> Vec<String> {
        let mut p = Problems::default();
        cfg.validate("proxy", &mut p);
        p.into_vec().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let mut p = Problems::default();
        ForwardAuthConfig::default().validate("forward_auth", &mut p);
        ProxyConfig::default().validate("proxy", &mut p);
        assert!(p.is_empty(), "{:?}", p.into_vec());
    }

    #[test]
    fn bad_upstreams_are_named() {
        let cfg = ProxyConfig {
            upstreams: vec![
                upstream("/api", "http://127.0.0.1:9000"),
                upstream("/api", "http://127.0.0.1:9001"),
                upstream("/x/", "http://127.0.0.1:9000"),
                upstream("/a/../b", "http://127.0.0.1:9000"),
                upstream("/ok", "https://127.0.0.1:9000"),
                upstream("/ok2", "http://u:p@127.0.0.1:9000"),
                upstream("/", "http://127.0.0.1:9000/base"),
            ],
            ..ProxyConfig::default()
        };
        assert_eq!(
            problems_of(&cfg),
            [
                "proxy.upstreams[1].prefix",
                "proxy.upstreams[2].prefix",
                "proxy.upstreams[3].prefix",
                "proxy.upstreams[4].url",
                "proxy.upstreams[5].url",
            ]
        );
    }

    #[test]
    fn identity_header_names_cannot_hold_underscores() {
        let mut cfg = ForwardAuthConfig::default();
        cfg.headers.user = "X_Remote_User".into();
        let mut p = Problems::default();
        cfg.validate("forward_auth", &mut p);
        let keys: Vec<String> = p.into_vec().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["forward_auth.headers.user"]);
    }

    #[test]
    fn identity_headers_must_be_distinct_and_not_reserved() {
        let mut cfg = ForwardAuthConfig::default();
        cfg.headers.user = "Authorization".into();
        cfg.headers.email = "x-auth-request-sub".into();
        cfg.headers.groups = "bad header".into();
        let mut p = Problems::default();
        cfg.validate("forward_auth", &mut p);
        let keys: Vec<String> = p.into_vec().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "forward_auth.headers.user",
                "forward_auth.headers.groups",
                "forward_auth.headers.email",
            ]
        );
    }
}
