//! The policy decision for one request, shared by the library layer,
//! forward-auth and the reverse proxy so all three judge alike.

use axum::http::{HeaderMap, Method};

use super::{AuthRejection, Authenticated, Authn, Bridge, Csrf, Mode, RouteRule, metrics};

/// What the route policy decided for one request.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Let it through.
    Allow(Box<Allowed>),
    /// Refuse it (answered by the library layer's `refuse`).
    Refuse(AuthRejection),
}

/// A request let through.
#[derive(Debug)]
pub(crate) struct Allowed {
    /// The identity, unless an anonymous request to a public route.
    pub(crate) authenticated: Option<Authenticated>,
    /// A stale session or revoked credential on a public route: the
    /// response clears the bridge's cookies.
    pub(crate) clear_cookies: bool,
}

/// Judge a request to `rule` with `method` and `headers` exactly as the
/// library layer does: authenticate for the rule's mode, evaluate a shadow
/// mode alongside, refuse cookie-authenticated unsafe methods without CSRF
/// proof, count the request by rule × credential × outcome.
pub(crate) async fn decide(
    bridge: &Bridge,
    rule: &RouteRule,
    method: &Method,
    headers: &HeaderMap,
) -> Decision {
    let authn = bridge.authenticate(headers, rule.mode).await;
    if let Some(evaluate) = rule.evaluate {
        let shadow = bridge.authenticate(headers, evaluate).await;
        if shadow.accepted() != authn.accepted() {
            metrics::shadow_disagreement(
                &rule.name,
                rule.mode.as_str(),
                evaluate.as_str(),
                authn.outcome(),
                shadow.outcome(),
            );
        }
    }
    match authn {
        Authn::Authenticated(a) => {
            let kind = a.identity.credential.kind;
            if kind.is_cookie() && Csrf::is_unsafe(method) && !bridge.csrf().allows(headers) {
                // Counted by `refuse`.
                return Decision::Refuse(AuthRejection::CsrfFailed);
            }
            metrics::request(&rule.name, kind.as_str(), "ok");
            Decision::Allow(Box::new(Allowed {
                authenticated: Some(a),
                clear_cookies: false,
            }))
        }
        Authn::Anonymous if rule.mode == Mode::Public => {
            metrics::request(&rule.name, "none", "anonymous");
            Decision::Allow(Box::new(Allowed {
                authenticated: None,
                clear_cookies: false,
            }))
        }
        Authn::Rejected(rejection) if rule.mode == Mode::Public => {
            // A stale cookie must not lock anyone out of a public page.
            metrics::request(&rule.name, "none", rejection.outcome());
            Decision::Allow(Box::new(Allowed {
                authenticated: None,
                clear_cookies: matches!(
                    rejection,
                    AuthRejection::InvalidSession | AuthRejection::Revoked
                ),
            }))
        }
        Authn::Anonymous => Decision::Refuse(AuthRejection::MissingCredential),
        Authn::Rejected(rejection) => Decision::Refuse(rejection),
    }
}
