//! `GET /login/oidc` and its callback: the OpenID Connect login.
//!
//! The pending login (state, nonce, PKCE verifier, `next`, start time) is a
//! record in the session store, named by a random id in a short-lived
//! HttpOnly, SameSite=Lax cookie: any instance sharing the store can finish
//! the flow, and the record is deleted the first time a callback presents
//! it, whatever the outcome. The record holds no identity, so it never
//! passes as a session. Two callbacks racing with one cookie could both
//! read it before either deletes it; the provider's one-time code then lets
//! only one of them through.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use cookie::{Cookie, SameSite};
use session_bridge_store::{Id, Record, SessionStore};
use time::OffsetDateTime;

use super::AppState;
use super::auth::{html_escape, start_session};
use super::redirect::safe_next;
use crate::bridge::cookies;
use crate::login::oidc::{OidcError, OidcLogin, PENDING_TTL, PendingLogin};

/// Key of the pending login in its store record.
const PENDING_KEY: &str = "bridge.oidc_pending";
/// Name of the cookie naming the pending login (`__Host-` prefixed when
/// cookies are secure).
const PENDING_COOKIE: &str = "sb_oidc";

/// The OIDC routes, when `[login.oidc]` is configured.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    match &state.oidc {
        Some(oidc) => Router::new()
            .route("/login/oidc", get(start))
            .route(oidc.callback_path(), get(callback)),
        None => Router::new(),
    }
}

/// `GET /login/oidc?next=/path`: send the browser to the provider.
async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "Single sign-on is not enabled.",
        );
    };
    let client = state.client_address(peer.ip(), &headers);
    let allowed = state
        .oidc_starts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .attempt(client, std::time::Instant::now());
    if let Err(wait) = allowed {
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "Too many sign-in attempts from this address. Try again later.",
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let params = parse_query(query.as_deref());
    let next = match &params {
        Some(p) => safe_next(p.get("next").map(String::as_str)),
        None => "/".to_owned(),
    };
    let (url, pending) = match oidc.begin(next).await {
        Ok(started) => started,
        Err(err) => return failure(&err),
    };
    let id = match save_pending(state.stores.sessions.as_ref(), &pending).await {
        Ok(id) => id,
        Err(err) => {
            tracing::warn!(error = %err, "OIDC login: session store unavailable");
            return unavailable();
        }
    };
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return failure(&OidcError::BadDiscovery(
            "the authorization URL is not a valid header",
        ));
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.append(
        header::SET_COOKIE,
        pending_cookie(&state, id.to_string(), PENDING_TTL),
    );
    no_store(headers);
    response
}

/// `GET <callback>?code&state[&iss]` (or `?error&error_description`): finish
/// the login, then a new session and a redirect to the saved `next`.
async fn callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "Single sign-on is not enabled.",
        );
    };
    let secure = state.bridge.cookies().secure();
    // Consumed first: a pending login is used once, whatever happens next.
    let pending = match cookies::read(&headers, &pending_cookie_name(secure)) {
        Some(cookie) => take_pending(state.stores.sessions.as_ref(), cookie).await,
        None => Ok(None),
    };
    let mut response = match pending {
        Ok(pending) => finish(&state, &oidc, query.as_deref(), pending, &headers).await,
        Err(err) => {
            tracing::warn!(error = %err, "OIDC callback: session store unavailable");
            unavailable()
        }
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        pending_cookie(&state, String::new(), std::time::Duration::ZERO),
    );
    response
}

async fn finish(
    state: &AppState,
    oidc: &Arc<OidcLogin>,
    query: Option<&str>,
    pending: Option<PendingLogin>,
    headers: &HeaderMap,
) -> Response {
    let Some(params) = parse_query(query) else {
        return invalid_callback();
    };
    if let Some(error) = params.get("error") {
        // Only a well-formed error code is logged; the description is the
        // provider's (or an attacker's) free text and is not shown.
        let code =
            if error.len() <= 64 && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                error.as_str()
            } else {
                "malformed"
            };
        tracing::info!(error = code, "OIDC login refused by the provider");
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign-in was not completed",
            "The identity provider did not sign you in. You can try again.",
        );
    }
    let (Some(code), Some(returned_state)) = (params.get("code"), params.get("state")) else {
        return invalid_callback();
    };
    let Some(pending) = pending else {
        tracing::info!(
            "OIDC callback without a pending login (expired, replayed or another browser)"
        );
        return invalid_callback();
    };
    let user = match oidc
        .finish(
            &pending,
            code,
            returned_state,
            params.get("iss").map(String::as_str),
        )
        .await
    {
        Ok(user) => user,
        Err(err) => return failure(&err),
    };
    // A session id the client already had is never reused (no fixation).
    if let Some(old) = cookies::read(headers, state.bridge.cookies().session_name())
        && let Ok(id) = old.parse()
    {
        let _ = state.bridge.sessions().destroy(&id).await;
    }
    match start_session(state, &user, None).await {
        Ok(started) => {
            let php = match state
                .bridge
                .sources_login(headers, &user, started.family())
                .await
            {
                Ok(cookie) => cookie,
                Err(r) => return r.into_response(),
            };
            tracing::info!(sub = %user.sub, issuer = %user.issuer, "login (oidc)");
            let mut response = StatusCode::SEE_OTHER.into_response();
            // `next` went through `safe_next`: a local path, a valid header.
            let location =
                HeaderValue::from_str(&pending.next).unwrap_or(HeaderValue::from_static("/"));
            response.headers_mut().insert(header::LOCATION, location);
            started.set_cookies(state, response.headers_mut(), true);
            for cookie in php {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(response) => response,
    }
}

/// Query parameters; `None` when one is repeated (which value would the
/// provider have meant?).
fn parse_query(query: Option<&str>) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(out)
}

/// Keep `pending` in the store until [`PENDING_TTL`] from now; its id goes
/// in the cookie.
async fn save_pending(
    store: &dyn SessionStore,
    pending: &PendingLogin,
) -> Result<Id, tower_sessions_core::session_store::Error> {
    let value = serde_json::to_value(pending)
        .map_err(|e| tower_sessions_core::session_store::Error::Encode(e.to_string()))?;
    let mut record = Record {
        id: Id::default(),
        data: HashMap::from([(PENDING_KEY.to_owned(), value)]),
        expiry_date: OffsetDateTime::now_utc() + PENDING_TTL,
    };
    store.create(&mut record).await?;
    Ok(record.id)
}

/// The pending login named by `cookie`, deleted from the store; `None` when
/// the cookie names nothing live (or a record that is not a pending login,
/// which is left alone).
async fn take_pending(
    store: &dyn SessionStore,
    cookie: &str,
) -> Result<Option<PendingLogin>, tower_sessions_core::session_store::Error> {
    // Only the canonical encoding of an id reaches the store.
    let Ok(id) = cookie.parse::<Id>() else {
        return Ok(None);
    };
    if id.to_string() != cookie {
        return Ok(None);
    }
    let Some(record) = store.load(&id).await? else {
        return Ok(None);
    };
    let Some(pending) = record
        .data
        .get(PENDING_KEY)
        .and_then(|v| serde_json::from_value::<PendingLogin>(v.clone()).ok())
    else {
        return Ok(None);
    };
    store.delete(&id).await?;
    // Stores may return records past their expiry (DynamoDB deletes late).
    if record.expiry_date <= OffsetDateTime::now_utc() {
        return Ok(None);
    }
    Ok(Some(pending))
}

fn pending_cookie_name(secure: bool) -> String {
    if secure {
        format!("__Host-{PENDING_COOKIE}")
    } else {
        PENDING_COOKIE.to_owned()
    }
}

fn pending_cookie(state: &AppState, value: String, max_age: std::time::Duration) -> HeaderValue {
    let secure = state.bridge.cookies().secure();
    let cookie = Cookie::build((pending_cookie_name(secure), value))
        .path("/")
        .http_only(true)
        .secure(secure)
        // Lax: the provider sends the browser back with a top-level GET.
        .same_site(SameSite::Lax)
        .max_age(time::Duration::try_from(max_age).unwrap_or(time::Duration::ZERO))
        .build();
    // The value is a store id or empty: always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The page for a failed login: one fixed message per kind, details logged.
fn failure(err: &OidcError) -> Response {
    let detail = crate::error_chain(err);
    match err {
        OidcError::InvalidState | OidcError::ResponseIssuer | OidcError::CodeRejected(_) => {
            tracing::info!(error = %detail, "OIDC login rejected");
            invalid_callback()
        }
        OidcError::IdToken(e)
            if e.kind() == crate::tokens::verify::VerifyErrorKind::IssuerUnavailable =>
        {
            tracing::warn!(error = %detail, "OIDC login failed: provider keys unavailable");
            unavailable()
        }
        OidcError::IdToken(_) | OidcError::WrongToken(_) | OidcError::Nonce => {
            tracing::warn!(error = %detail, "OIDC login rejected: bad ID token");
            page(
                StatusCode::UNAUTHORIZED,
                "Sign-in failed",
                "The identity provider's answer could not be verified. Please try again.",
            )
        }
        OidcError::Discovery(_) | OidcError::TokenRequest(_) | OidcError::UserInfo(_) => {
            tracing::warn!(error = %detail, "OIDC login failed: provider unreachable or failing");
            unavailable()
        }
        _ => {
            tracing::error!(error = %detail, "OIDC login failed: provider misconfigured");
            page(
                StatusCode::BAD_GATEWAY,
                "Sign-in is not available",
                "The identity provider is not set up correctly. Please contact the administrator.",
            )
        }
    }
}

fn invalid_callback() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in link invalid or expired",
        "This sign-in could not be completed: it expired, was already used, or was started in another browser. Please start again.",
    )
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is temporarily unavailable",
        "The identity provider cannot be reached right now. Please try again in a moment.",
    )
}

fn page(status: StatusCode, title: &'static str, message: &'static str) -> Response {
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto}}</style>
</head><body><h1>{title}</h1><p role="alert">{message}</p><p><a href="/login">Back to sign-in</a></p></body></html>"#,
        title = html_escape(title),
        message = html_escape(message),
    );
    let mut response = (status, Html(body)).into_response();
    no_store(response.headers_mut());
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The callback URL carries the code: never in a Referer.
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use session_bridge_store::MemoryStore;

    fn pending() -> PendingLogin {
        PendingLogin {
            state: "s".to_owned(),
            nonce: "n".to_owned(),
            pkce_verifier: "v".to_owned(),
            next: "/next".to_owned(),
            created_at: OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    #[tokio::test]
    async fn a_pending_login_is_taken_once() {
        let store = MemoryStore::default();
        let id = save_pending(&store, &pending()).await.unwrap();
        let cookie = id.to_string();
        let taken = take_pending(&store, &cookie).await.unwrap().unwrap();
        assert_eq!(taken.next, "/next");
        assert!(take_pending(&store, &cookie).await.unwrap().is_none());
        for bad in ["", "x", "AAAAAAAAAAAAAAAAAAAAAA", &format!("{cookie}=")] {
            assert!(take_pending(&store, bad).await.unwrap().is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn other_records_and_expired_ones_are_not_pending_logins() {
        let store = MemoryStore::default();
        let mut session = Record {
            id: Id::default(),
            data: HashMap::from([("bridge.identity".to_owned(), serde_json::json!({}))]),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut session).await.unwrap();
        assert!(
            take_pending(&store, &session.id.to_string())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store.load(&session.id).await.unwrap().is_some(),
            "a session must not be deleted"
        );

        let mut old = Record {
            id: Id::default(),
            data: HashMap::from([(
                PENDING_KEY.to_owned(),
                serde_json::to_value(pending()).unwrap(),
            )]),
            expiry_date: OffsetDateTime::now_utc() - time::Duration::seconds(1),
        };
        store.create(&mut old).await.unwrap();
        assert!(
            take_pending(&store, &old.id.to_string())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_query(Some("state=a&state=b")).is_none());
        let q = parse_query(Some("code=c&state=s%20x")).unwrap();
        assert_eq!(q["state"], "s x");
        assert!(parse_query(None).unwrap().is_empty());
    }
}
