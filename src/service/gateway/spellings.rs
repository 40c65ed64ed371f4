//! Header names a client could use to pass for the bridge.
//!
//! CGI, FastCGI (PHP), WSGI and Rack hand an application its request
//! headers as `HTTP_*` variables: `X-Auth-Request-User`,
//! `x-auth-request-user` and `X_Auth_Request_User` all become
//! `HTTP_X_AUTH_REQUEST_USER`, and when two arrive, which one wins varies
//! per request. So the gateway compares names case-insensitively with `_`
//! read as `-`, and, as nginx does by default (`underscores_in_headers
//! off`), drops every client header whose name contains `_` unless told
//! otherwise.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName};

use super::{IDENTITY_PREFIX, IdentityHeaders};

/// Headers asking an application to run another method's handler than the
/// request's (Express `method-override`, Rails, Symfony, ASP.NET). The
/// policy judged the real method, so they never reach an upstream.
pub(super) const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// `name` as CGI reads it, lowercased and with `_` as `-`
/// (`HeaderName`s are lowercase already).
pub(super) fn folded(name: &HeaderName) -> Cow<'_, str> {
    let name = name.as_str();
    if name.contains('_') {
        Cow::Owned(name.replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether a folded name is an identity header (configured or
/// `X-Auth-Request-*`). `Authorization` has no other spelling: no `-` in it.
pub(super) fn is_identity(identity: &IdentityHeaders, folded: &str) -> bool {
    folded.starts_with(IDENTITY_PREFIX) || identity.names().any(|n| n.as_str() == folded)
}

/// The client headers, among `headers`, written with `_` whose folded name
/// `managed` claims — headers that would reach a CGI-style application as
/// one the bridge sets.
pub(super) fn disguised<'a>(
    headers: &'a HeaderMap,
    managed: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = &'a HeaderName> + 'a {
    headers
        .keys()
        .filter(move |name| name.as_str().contains('_') && managed(&folded(name)))
}

/// Remove every header written with `_`, or with `allow_underscores` only
/// those whose folded name `managed` claims.
pub(super) fn strip_underscored(
    headers: &mut HeaderMap,
    allow_underscores: bool,
    managed: impl Fn(&str) -> bool,
) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            name.as_str().contains('_') && (!allow_underscores || managed(&folded(name)))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service::gateway::config::IdentityHeaderNames;
    use axum::http::HeaderValue;

    fn headers(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
        }
        h
    }

    #[test]
    fn underscore_spellings_of_identity_headers_are_recognised() {
        let id = IdentityHeaders::new(&IdentityHeaderNames {
            email: "X-Mail".into(),
            ..IdentityHeaderNames::default()
        });
        let h = headers(&[
            "X_Auth_Request_User",
            "x-auth-request_sub",
            "X_MAIL",
            "X_AUTH_REQUEST_ANYTHING",
            "x-mail",
            "x_other",
            "accept",
        ]);
        let mut found: Vec<&str> = disguised(&h, |f| is_identity(&id, f))
            .map(HeaderName::as_str)
            .collect();
        found.sort_unstable();
        assert_eq!(
            found,
            [
                "x-auth-request_sub",
                "x_auth_request_anything",
                "x_auth_request_user",
                "x_mail",
            ]
        );
    }

    #[test]
    fn underscored_headers_go_unless_allowed_and_unmanaged() {
        let managed = |f: &str| f == "x-auth-request-user";
        let mut h = headers(&["X_Auth_Request_User", "x_custom", "accept"]);
        strip_underscored(&mut h, false, managed);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["accept"]
        );
        let mut h = headers(&["X_Auth_Request_User", "x_custom", "accept"]);
        strip_underscored(&mut h, true, managed);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x_custom"]);
    }
}
