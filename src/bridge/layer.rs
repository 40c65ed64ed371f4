//! The tower layer that puts an [`Identity`] into every request, and the
//! extractors handlers use to get it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::config::Mode;
use super::{AuthRejection, Authenticated, Bridge, app_session, metrics};
use crate::identity::{CredentialKind, Identity};

/// Authenticates every request by the bridge's route policy.
///
/// ```no_run
/// # fn demo(bridge: session_bridge::bridge::Bridge) {
/// use axum::{Router, routing::get};
/// use session_bridge::{Identity, bridge::BridgeLayer};
///
/// async fn me(identity: Identity) -> String {
///     format!("hello {}", identity.sub)
/// }
///
/// let app: Router = Router::new().route("/api/me", get(me)).layer(BridgeLayer::new(bridge));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BridgeLayer {
    bridge: Bridge,
}

impl BridgeLayer {
    /// A layer over `bridge`.
    pub fn new(bridge: Bridge) -> Self {
        Self { bridge }
    }
}

impl<S> Layer<S> for BridgeLayer {
    type Service = BridgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BridgeService {
            bridge: self.bridge.clone(),
            inner,
        }
    }
}

/// The service of [`BridgeLayer`].
#[derive(Debug, Clone)]
pub struct BridgeService<S> {
    bridge: Bridge,
    inner: S,
}

impl<S, B> Service<Request<B>> for BridgeService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready is.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let bridge = self.bridge.clone();
        Box::pin(async move { Ok(handle(bridge, inner, req).await) })
    }
}

async fn handle<S, B>(bridge: Bridge, mut inner: S, req: Request<B>) -> Response
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    let (mut parts, body) = req.into_parts();
    let rule = match bridge.policy().judge(&parts.method, parts.uri.path()) {
        Ok(rule) => rule.clone(),
        Err(rejection) => return rejection.into_response(),
    };
    // The session record read to authenticate is kept for the
    // application's `Session`: one read per request.
    let (decision, loaded) = app_session::scoped(super::decision::decide(
        &bridge,
        &rule,
        &parts.method,
        &parts.headers,
    ))
    .await;
    let allowed = match decision {
        super::decision::Decision::Allow(allowed) => allowed,
        super::decision::Decision::Refuse(rejection) => {
            return refuse(&bridge, &rule, &parts, rejection);
        }
    };
    let (session, session_id) = app_session::for_request(&bridge, &parts.headers, loaded);
    parts.extensions.insert(session.clone());
    if let Some(authenticated) = &allowed.authenticated {
        parts.extensions.insert(authenticated.identity.clone());
    }
    let mut response = call(&mut inner, Request::from_parts(parts, body)).await;
    match &allowed.authenticated {
        // An anonymous (or stale-cookie) request to a public route.
        None if allowed.clear_cookies => clear_cookies(&bridge, response.headers_mut()),
        None => {}
        Some(authenticated) if rule.mode == Mode::Either && !session.is_modified() => {
            exchange(&bridge, authenticated, response.headers_mut()).await;
        }
        Some(_) => {}
    }
    if let Err(rejection) =
        app_session::persist(&bridge, &session, session_id, response.headers_mut()).await
    {
        return rejection.into_response();
    }
    response
}

async fn call<S, B>(inner: &mut S, req: Request<B>) -> Response
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    match inner.call(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `either` routes keep both credentials alive: a session without a token
/// cookie gets one minted; a token cookie without a session gets a session
/// in the same token family (so logging out either one kills both).
pub(crate) async fn exchange(bridge: &Bridge, a: &Authenticated, headers: &mut HeaderMap) {
    let Some(family) = a.family.as_deref() else {
        return;
    };
    match a.identity.credential.kind {
        CredentialKind::Session => match bridge.mint_for(&a.identity, family) {
            Ok(token) => {
                let max_age = token.expires_at - time::OffsetDateTime::now_utc();
                headers.append(
                    header::SET_COOKIE,
                    bridge.cookies().set_token(token.token, max_age),
                );
                metrics::exchange("token_from_session");
            }
            Err(err) => {
                tracing::warn!(error = %crate::error_chain(&err), "could not mint a token for a session")
            }
        },
        CredentialKind::TokenCookie if !a.session_cookie_present => {
            let id = &a.identity;
            let user = id.principal.clone();
            match bridge
                .sessions()
                .create(&user, Some(family.to_owned()))
                .await
            {
                Ok(session) => {
                    let max_age = session.absolute_expires_at() - time::OffsetDateTime::now_utc();
                    headers.append(
                        header::SET_COOKIE,
                        bridge
                            .cookies()
                            .set_session(session.id.to_string(), max_age),
                    );
                    metrics::exchange("session_from_token");
                }
                Err(err) => tracing::warn!(error = %err, "could not link a session to a token"),
            }
        }
        CredentialKind::LegacySession => link_source(bridge, a, family, headers).await,
        _ => {}
    }
}

/// A login a [credential source](super::CredentialSource) proved: a bridge
/// session and a token cookie in the source's token family, so later
/// requests carry bridge credentials and a logout through the bridge ends
/// all three.
async fn link_source(bridge: &Bridge, a: &Authenticated, family: &str, headers: &mut HeaderMap) {
    let session = match bridge
        .sessions()
        .create(&a.identity.principal, Some(family.to_owned()))
        .await
    {
        Ok(session) => session,
        Err(err) => {
            tracing::warn!(error = %err, "could not link a session to a credential source's login");
            return;
        }
    };
    let now = time::OffsetDateTime::now_utc();
    headers.append(
        header::SET_COOKIE,
        bridge
            .cookies()
            .set_session(session.id.to_string(), session.absolute_expires_at() - now),
    );
    metrics::exchange("session_from_legacy");
    match bridge.mint_for(&session.to_identity(), family) {
        Ok(token) => {
            headers.append(
                header::SET_COOKIE,
                bridge
                    .cookies()
                    .set_token(token.token, token.expires_at - now),
            );
            metrics::exchange("token_from_session");
        }
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "could not mint a token for a credential source's login")
        }
    }
}

pub(crate) fn refuse(
    bridge: &Bridge,
    rule: &super::RouteRule,
    parts: &Parts,
    rejection: AuthRejection,
) -> Response {
    let credential = "none";
    metrics::request(&rule.name, credential, rejection.outcome());
    let wants_login = matches!(
        rejection,
        AuthRejection::MissingCredential | AuthRejection::InvalidSession | AuthRejection::Revoked
    );
    let mut response = match bridge.login_redirect() {
        Some(login)
            if wants_login
                && rule.mode != Mode::Token
                && is_navigation(&parts.method, &parts.headers) =>
        {
            let next = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let location = format!(
                "{login}?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        _ => rejection.clone().into_response(),
    };
    if matches!(
        rejection,
        AuthRejection::InvalidSession | AuthRejection::Revoked
    ) {
        clear_cookies(bridge, response.headers_mut());
    }
    response
}

pub(crate) fn clear_cookies(bridge: &Bridge, headers: &mut HeaderMap) {
    for cookie in bridge.cookies().clear_all() {
        headers.append(header::SET_COOKIE, cookie);
    }
}

/// A top-level browser navigation (as opposed to a script's API call).
fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return false;
    }
    match headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        Some(mode) => mode == "navigate",
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or(AuthRejection::MissingCredential)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Identity>().cloned())
    }
}
