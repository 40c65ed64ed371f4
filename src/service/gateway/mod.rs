//! The gateway: the bridge's identity for stacks that do not link the
//! library.
//!
//! - [`forward_auth`]: `/auth/verify` for nginx `auth_request`, Caddy
//!   `forward_auth` and Traefik ForwardAuth, judging the *original* request
//!   the proxy describes in its headers;
//! - [`proxy`]: an optional reverse proxy for requests no bridge route
//!   serves.
//!
//! Both decide the same way the library layer does ([`decide`]: route
//! policy, shadow evaluation, CSRF, metrics) and tell upstreams the same
//! things: identity headers ([`IdentityHeaders`]) and, when configured, a
//! bearer token ([`tokens`]).

pub(super) mod config;
mod forward_auth;
mod proxy;
mod sent;
mod spellings;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::routing::any;

use self::config::{ForwardAuthConfig, IdentityHeaderNames, ProxyConfig};
use self::proxy::Proxy;
use self::tokens::UpstreamTokens;
use super::AppState;
use crate::bridge::decision::{Decision, decide};
use crate::bridge::{Authenticated, Bridge};
use crate::identity::{CredentialKind, Identity};

/// Every header whose name starts with this is stripped from proxied
/// requests, whatever the configured identity header names are.
const IDENTITY_PREFIX: &str = "x-auth-request-";

/// Forward-auth and proxy settings, built once from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    forward_auth: bool,
    headers: IdentityHeaders,
    bearer: bool,
    tokens: UpstreamTokens,
    proxy: Option<Proxy>,
}

impl Gateway {
    /// The gateway for `[forward_auth]` and `[proxy]` (both validated);
    /// `issuer` is the public URL (its scheme is sent as
    /// `X-Forwarded-Proto`).
    pub(crate) fn new(fa: &ForwardAuthConfig, proxy: &ProxyConfig, issuer: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                forward_auth: fa.enabled,
                headers: IdentityHeaders::new(&fa.headers),
                bearer: fa.bearer,
                tokens: UpstreamTokens::new(fa.token_cache_size),
                proxy: Proxy::new(proxy, issuer),
            }),
        }
    }

    fn headers(&self) -> &IdentityHeaders {
        &self.inner.headers
    }

    /// The `Authorization` value an upstream gets for `a`, if any: the
    /// client's own bearer token when that is what proved the identity
    /// (the bridge verified it), else with `bearer = true` an access token
    /// minted from the session (cached per session family).
    fn upstream_authorization(
        &self,
        bridge: &Bridge,
        a: &Authenticated,
        headers: &HeaderMap,
    ) -> Option<HeaderValue> {
        let kind = a.identity.credential.kind;
        if kind == CredentialKind::Bearer {
            return headers.get(header::AUTHORIZATION).cloned();
        }
        if !self.inner.bearer {
            return None;
        }
        match a.family.as_deref() {
            Some(family) => self.inner.tokens.get(bridge, &a.identity, family),
            // Our tokens always name their family; a token cookie without
            // one is forwarded as it is.
            None if kind == CredentialKind::TokenCookie => {
                let token = crate::bridge::cookies::read(headers, bridge.cookies().token_name())?;
                let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        }
    }
}

/// The gateway's routes: `/auth/verify` and the proxy fallback, as
/// configured.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if state.gateway.inner.forward_auth {
        router = router.route("/auth/verify", any(forward_auth::verify));
    }
    if state.gateway.inner.proxy.is_some() {
        router = router.fallback(proxy::forward);
    }
    router
}

/// The identity headers' names, and how identities become header values.
#[derive(Debug)]
struct IdentityHeaders {
    user: HeaderName,
    sub: HeaderName,
    groups: HeaderName,
    email: HeaderName,
}

impl IdentityHeaders {
    fn new(names: &IdentityHeaderNames) -> Self {
        // Validated with the configuration; the defaults stand in for a
        // name that slipped through.
        let defaults = IdentityHeaderNames::default();
        let parse = |name: &str, default: &str| {
            HeaderName::from_bytes(name.as_bytes())
                .or_else(|_| HeaderName::from_bytes(default.as_bytes()))
                .unwrap_or(HeaderName::from_static("x-auth-request-user"))
        };
        Self {
            user: parse(&names.user, &defaults.user),
            sub: parse(&names.sub, &defaults.sub),
            groups: parse(&names.groups, &defaults.groups),
            email: parse(&names.email, &defaults.email),
        }
    }

    /// The four names.
    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        [&self.user, &self.sub, &self.groups, &self.email].into_iter()
    }

    /// Remove every identity header a client may have sent: the configured
    /// names and anything starting with `X-Auth-Request-`, in any spelling
    /// a CGI-style application reads as one of them (`X_Auth_Request_User`).
    fn strip(&self, headers: &mut HeaderMap) {
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| spellings::is_identity(self, &spellings::folded(k)))
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(&name);
        }
    }

    /// Set the headers for `identity`. A value that cannot be sent as
    /// printable ASCII is left out (never escaped into something an
    /// upstream would read differently); so is a group containing a comma.
    fn insert(&self, identity: &Identity, headers: &mut HeaderMap) {
        let mut set = |name: &HeaderName, value: Option<&str>| match value.and_then(header_value) {
            Some(v) => {
                headers.insert(name.clone(), v);
            }
            None => {
                if value.is_some_and(|v| !v.is_empty()) {
                    tracing::debug!(header = %name, "identity value not representable as a header; left out");
                }
                headers.remove(name);
            }
        };
        set(&self.user, identity.username.as_deref());
        set(&self.sub, Some(&identity.sub));
        set(&self.email, identity.email.as_deref());
        let groups: Vec<&str> = identity
            .groups
            .iter()
            .map(String::as_str)
            .filter(|g| !g.contains(',') && header_value(g).is_some())
            .collect();
        let joined = groups.join(",");
        set(
            &self.groups,
            (!joined.is_empty()).then_some(joined.as_str()),
        );
    }
}

/// `value` as a header value if it is non-empty printable ASCII (spaces
/// inside allowed) without surrounding whitespace.
fn header_value(value: &str) -> Option<HeaderValue> {
    let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if value.is_empty() || !printable || value.trim() != value || value.len() > 4096 {
        return None;
    }
    HeaderValue::from_str(value).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::{Credential, Principal};
    use time::OffsetDateTime;

    fn identity(username: &str, groups: &[&str], email: Option<&str>) -> Identity {
        Identity {
            principal: Principal {
                sub: "sub-1".into(),
                username: Some(username.into()),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                email: email.map(str::to_owned),
                auth_time: OffsetDateTime::UNIX_EPOCH,
                issuer: "http://bridge.test".into(),
            },
            credential: Credential {
                kind: CredentialKind::Session,
                id: "family".into(),
                expires_at: OffsetDateTime::UNIX_EPOCH,
                absolute_expires_at: None,
            },
        }
    }

    #[test]
    fn identity_headers_replace_client_values_and_drop_what_cannot_be_sent() {
        let h = IdentityHeaders::new(&IdentityHeaderNames::default());
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-request-user", HeaderValue::from_static("admin"));
        headers.insert("x-auth-request-email", HeaderValue::from_static("evil@x"));
        headers.insert("x-auth-request-extra", HeaderValue::from_static("1"));
        h.strip(&mut headers);
        assert!(headers.is_empty());

        let mut headers = HeaderMap::new();
        headers.insert("x-auth-request-email", HeaderValue::from_static("evil@x"));
        h.insert(
            &identity("alice", &["staff", "a,b", "ops\r\nx: y", "devs"], None),
            &mut headers,
        );
        assert_eq!(headers["x-auth-request-user"], "alice");
        assert_eq!(headers["x-auth-request-sub"], "sub-1");
        assert_eq!(headers["x-auth-request-groups"], "staff,devs");
        assert!(headers.get("x-auth-request-email").is_none());

        let mut headers = HeaderMap::new();
        h.insert(&identity("jos\u{e9}", &[], Some("a@b.c")), &mut headers);
        assert!(headers.get("x-auth-request-user").is_none());
        assert!(headers.get("x-auth-request-groups").is_none());
        assert_eq!(headers["x-auth-request-email"], "a@b.c");
        h.insert(&identity("x\r\nSet-Cookie: a=b", &[], None), &mut headers);
        assert!(headers.get("x-auth-request-user").is_none());
        assert!(headers.get("set-cookie").is_none());
    }

    #[test]
    fn header_values_are_printable_ascii_only() {
        assert!(header_value("alice smith").is_some());
        for bad in ["", " a", "a ", "a\tb", "a\nb", "\u{7f}", "caf\u{e9}"] {
            assert!(header_value(bad).is_none(), "{bad:?}");
        }
    }
}
