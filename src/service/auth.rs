//! Login, logout and the session ⇄ token exchange endpoints.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::AppState;
use super::redirect::safe_next;
use crate::bridge::LogoutScope;
use crate::bridge::sessions::{LoadedSession, unix_ms};
use crate::bridge::{AuthRejection, Authenticated, Authn, Mode, cookies};
use crate::identity::{CredentialKind, Identity};
use crate::login::{Attempt, AuthenticatedUser, LoginError, Password};

/// Longest username and password accepted before any check.
const MAX_USERNAME: usize = 256;
const MAX_PASSWORD: usize = 1024;

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Whether the client posted a browser form (answered with redirects and
/// HTML) rather than JSON.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

fn parse_login(headers: &HeaderMap, body: &Bytes) -> Option<LoginForm> {
    if is_form(headers) {
        let mut form = LoginForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "username" => form.username = v.into_owned(),
                "password" => form.password = v.into_owned(),
                "next" => form.next = Some(v.into_owned()),
                _ => {}
            }
        }
        Some(form)
    } else {
        serde_json::from_slice(body).ok()
    }
}

pub(super) fn error(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    crate::bridge::rejection::error_response(status, code, message)
}

/// `GET /login`: a minimal login form.
pub(super) async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    let failed = q.get("error").is_some_and(|e| e == "1");
    login_html(StatusCode::OK, &next, failed, &state)
}

fn login_html(status: StatusCode, next: &str, failed: bool, state: &AppState) -> Response {
    let message = if failed {
        r#"<p class="error" role="alert">Wrong username or password.</p>"#
    } else {
        ""
    };
    let sso = match &state.oidc {
        Some(oidc) => format!(
            r#"<p><a href="/login/oidc?next={}">Sign in with {}</a></p>"#,
            html_escape(&url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()),
            html_escape(oidc.display_name()),
        ),
        None => String::new(),
    };
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}}label,input,button{{display:block;width:100%;margin:.3rem 0}}.error{{color:#b00}}</style>
</head><body><h1>Sign in</h1>{message}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>{sso}</body></html>"#,
        next = html_escape(next),
    );
    let mut r = (status, Html(page)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("content-security-policy", HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"));
    r
}

/// Escape text for an HTML attribute or element.
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `POST /login`: username + password (form or JSON) → a new session, the
/// token cookie and the CSRF cookie.
pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = is_form(&headers);
    if !state.bridge.csrf().allows_login(&headers) {
        return AuthRejection::CsrfFailed.into_response();
    }
    let Some(source) = state.passwords.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "login_disabled",
            "password logins are not enabled",
        );
    };
    let Some(input) = parse_login(&headers, &body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected a form or a JSON object with username and password",
        );
    };
    let next = safe_next(input.next.as_deref());
    if input.username.is_empty()
        || input.password.is_empty()
        || input.username.len() > MAX_USERNAME
        || input.password.len() > MAX_PASSWORD
    {
        return if form {
            login_html(StatusCode::UNAUTHORIZED, &next, true, &state)
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "username and password are required",
            )
        };
    }
    let password = Password::new(input.password);
    let user = match source
        .authenticate(
            &input.username,
            &password,
            Attempt {
                client: state.client_address(peer.ip(), &headers),
            },
        )
        .await
    {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials) => {
            return if form {
                login_html(StatusCode::UNAUTHORIZED, &next, true, &state)
            } else {
                error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "wrong username or password",
                )
            };
        }
        Err(LoginError::RateLimited { retry_after }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many login attempts; try again later",
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(LoginError::ChallengeRequired(step)) => {
            tracing::info!(step, "login needs a step the bridge does not support");
            return error(
                StatusCode::UNAUTHORIZED,
                "challenge_required",
                "the identity provider requires another step",
            );
        }
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "login failed: identity source unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "login is temporarily unavailable",
            );
        }
    };
    // A session id the client already had is never reused (no fixation).
    if let Some(old) = cookies::read(&headers, state.bridge.cookies().session_name())
        && let Ok(id) = old.parse()
    {
        let _ = state.bridge.sessions().destroy(&id).await;
    }
    match start_session(&state, &user, None).await {
        Ok(started) => {
            let php = match state
                .bridge
                .sources_login(&headers, &user, started.family())
                .await
            {
                Ok(cookie) => cookie,
                Err(r) => return r.into_response(),
            };
            tracing::info!(sub = %user.sub, "login");
            let mut response = if form {
                Redirect::to(&next).into_response()
            } else {
                Json(json!({
                    "sub": user.sub,
                    "username": user.username,
                    "groups": user.groups,
                    "session_expires_at": started.session.expires_at.unix_timestamp(),
                    "csrf_token": started.csrf,
                    "next": next,
                }))
                .into_response()
            };
            started.set_cookies(&state, response.headers_mut(), true);
            for cookie in php {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(response) => response,
    }
}

/// A session created at login or linked to a token.
pub(super) struct Started {
    session: LoadedSession,
    token: Option<crate::tokens::mint::MintedToken>,
    csrf: String,
}

impl Started {
    /// The token family of the session.
    pub(super) fn family(&self) -> &str {
        &self.session.identity.family
    }

    pub(super) fn set_cookies(self, state: &AppState, headers: &mut HeaderMap, with_token: bool) {
        let cookies = state.bridge.cookies();
        let now = OffsetDateTime::now_utc();
        let session_age = self.session.absolute_expires_at() - now;
        headers.append(
            header::SET_COOKIE,
            cookies.set_session(self.session.id.to_string(), session_age),
        );
        headers.append(header::SET_COOKIE, cookies.set_csrf(self.csrf, session_age));
        if with_token && let Some(token) = self.token {
            headers.append(
                header::SET_COOKIE,
                cookies.set_token(token.token, token.expires_at - now),
            );
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

pub(super) async fn start_session(
    state: &AppState,
    user: &AuthenticatedUser,
    family: Option<String>,
) -> Result<Started, Response> {
    // Every source checks this already (token verification, the users
    // file); a session for a blank subject would still name nobody.
    if user.sub.trim().is_empty() {
        tracing::warn!(issuer = %user.issuer, "login refused: the identity has an empty subject");
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_identity",
            "the identity has no subject",
        ));
    }
    // Tokens carry `iat` in whole seconds and die when issued in the second
    // of a "log out everywhere": a login right after one waits for the next
    // second so its tokens are not born dead.
    match state.bridge.revocation().epoch(&user.sub).await {
        Ok(Some(epoch)) => {
            let now = unix_ms(OffsetDateTime::now_utc());
            if epoch >= now - 1000 {
                let wait = (epoch / 1000 + 1) * 1000 - now;
                tokio::time::sleep(std::time::Duration::from_millis(
                    u64::try_from(wait.clamp(0, 1000)).unwrap_or(0),
                ))
                .await;
            }
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "login failed: revocation store unavailable");
            return Err(AuthRejection::Unavailable.into_response());
        }
    }
    let session = state
        .bridge
        .sessions()
        .create(user, family)
        .await
        .map_err(|err| match err {
            crate::bridge::SessionError::Invalid => error(
                StatusCode::UNAUTHORIZED,
                "reauthentication_required",
                "the authentication is older than the session lifetime; log in again",
            ),
            err => {
                tracing::warn!(error = %err, "login failed: session store unavailable");
                AuthRejection::Unavailable.into_response()
            }
        })?;
    let identity = session.to_identity();
    let token = match state.bridge.mint_for(&identity, &session.identity.family) {
        Ok(token) => Some(token),
        Err(err) => {
            tracing::error!(error = %crate::error_chain(&err), "could not mint a token at login");
            None
        }
    };
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let csrf = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Started {
        session,
        token,
        csrf,
    })
}

/// Authenticate for an endpoint that changes state: any credential, CSRF
/// rules for cookies.
async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    mode: Mode,
) -> Result<Authenticated, Response> {
    match state.bridge.authenticate(headers, mode).await {
        Authn::Authenticated(a) => {
            if a.identity.credential.kind.is_cookie() && !state.bridge.csrf().allows(headers) {
                return Err(AuthRejection::CsrfFailed.into_response());
            }
            Ok(a)
        }
        Authn::Anonymous => Err(AuthRejection::MissingCredential.into_response()),
        Authn::Rejected(r) => Err(r.into_response()),
    }
}

pub(super) fn logged_out(state: &AppState, headers: &HeaderMap) -> Response {
    let mut response = if is_form(headers) {
        Redirect::to(state.bridge.login_redirect().unwrap_or("/login")).into_response()
    } else {
        Json(json!({ "status": "logged_out" })).into_response()
    };
    for cookie in state.bridge.cookies().clear_all() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    for cookie in state.bridge.sources_clear_cookies() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Delete the session named by the request's cookie, whatever proved the
/// request.
pub(super) async fn destroy_cookie_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(), Response> {
    if let Some(cookie) = cookies::read(headers, state.bridge.cookies().session_name())
        && let Ok(id) = cookie.parse()
    {
        state.bridge.sessions().destroy(&id).await.map_err(|err| {
            tracing::warn!(error = %err, "logout: session store unavailable");
            AuthRejection::Unavailable.into_response()
        })?;
    }
    Ok(())
}

/// `POST /logout/all`: move the user's epoch to now; every session and token
/// of the user issued before dies.
pub(super) async fn logout_all(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let a = match authenticated(&state, &headers, Mode::Either).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let everything = LogoutScope::User {
        sub: &a.identity.sub,
    };
    if let Err(r) = state.bridge.sources_logout(&headers, everything).await {
        return r.into_response();
    }
    let now = unix_ms(OffsetDateTime::now_utc());
    if let Err(err) = state.bridge.bump_epoch(&a.identity.sub, now).await {
        tracing::warn!(error = %crate::error_chain(&err), "logout-all: revocation store unavailable");
        return AuthRejection::Unavailable.into_response();
    }
    if let Err(r) = destroy_cookie_session(&state, &headers).await {
        return r;
    }
    tracing::info!(sub = %a.identity.sub, "logout everywhere");
    logged_out(&state, &headers)
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenQuery {
    /// `cookie` (default) or `body`.
    #[serde(default)]
    delivery: Option<String>,
}

/// `POST /token`: a fresh access token for the session, as the token cookie
/// (default) or in the body (`?delivery=body`, for API clients).
pub(super) async fn token(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let in_body = match q.delivery.as_deref() {
        None | Some("cookie") => false,
        Some("body") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "delivery must be `cookie` or `body`",
            );
        }
    };
    let a = match authenticated(&state, &headers, Mode::Session).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(family) = a.family.as_deref() else {
        return AuthRejection::InvalidSession.into_response();
    };
    let minted = match state.bridge.mint_for(&a.identity, family) {
        Ok(t) => t,
        Err(err) => {
            tracing::error!(error = %crate::error_chain(&err), "could not mint a token");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "could not issue a token",
            );
        }
    };
    let now = OffsetDateTime::now_utc();
    let expires_in = (minted.expires_at - now).whole_seconds().max(0);
    crate::bridge::metrics::exchange("token_from_session");
    let mut response = if in_body {
        Json(json!({
            "access_token": minted.token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "expires_at": minted.expires_at.unix_timestamp(),
        }))
        .into_response()
    } else {
        let mut r = Json(json!({ "token_type": "Bearer", "expires_in": expires_in, "expires_at": minted.expires_at.unix_timestamp() })).into_response();
        r.headers_mut().append(
            header::SET_COOKIE,
            state
                .bridge
                .cookies()
                .set_token(minted.token, minted.expires_at - now),
        );
        r
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /session`: a bearer token (ours or a trusted issuer's) → a session
/// cookie for the same `sub`, in the token's family.
pub(super) async fn session_from_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let a = match state.bridge.authenticate(&headers, Mode::Token).await {
        Authn::Authenticated(a) if a.identity.credential.kind == CredentialKind::Bearer => a,
        Authn::Authenticated(_) | Authn::Anonymous => {
            return error(
                StatusCode::UNAUTHORIZED,
                "missing_credential",
                "send the token in an Authorization: Bearer header",
            );
        }
        Authn::Rejected(r) => return r.into_response(),
    };
    let id = &a.identity;
    let user = id.principal.clone();
    match start_session(&state, &user, a.family.clone()).await {
        Ok(started) => {
            crate::bridge::metrics::exchange("session_from_token");
            let body = json!({
                "sub": user.sub,
                "session_expires_at": started.session.expires_at.unix_timestamp(),
                "csrf_token": started.csrf,
            });
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            started.set_cookies(&state, response.headers_mut(), true);
            response
        }
        Err(r) => r,
    }
}

/// `GET /session`: the identity and when its credential ends, for pages that
/// warn before the session ends. Prefers the session when both cookies are
/// present (its expiry is the one the user cares about).
///
/// Each credential is tried once: the session (or the PHP app's login),
/// then the tokens. An unavailable store ends the request with 503 at once;
/// trying the same dead store again through another credential would only
/// double the wait.
pub(super) async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let by_session = state.bridge.authenticate(&headers, Mode::Session).await;
    let authn = match by_session {
        Authn::Authenticated(_) | Authn::Rejected(AuthRejection::Unavailable) => by_session,
        _ => match state.bridge.authenticate(&headers, Mode::Token).await {
            // No token at all: the session's answer stands.
            Authn::Anonymous => by_session,
            // Both refused: the session's reason, as the user's main credential.
            Authn::Rejected(r)
                if !matches!(r, AuthRejection::Unavailable)
                    && matches!(by_session, Authn::Rejected(_)) =>
            {
                by_session
            }
            by_token => by_token,
        },
    };
    match authn {
        Authn::Authenticated(a) => {
            let mut r = Json(identity_json(&a.identity)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Authn::Anonymous => AuthRejection::MissingCredential.into_response(),
        Authn::Rejected(r) => r.into_response(),
    }
}

fn identity_json(identity: &Identity) -> serde_json::Value {
    let now = OffsetDateTime::now_utc();
    let mut v = serde_json::to_value(identity).unwrap_or_default();
    v["expires_in"] = json!(
        (identity.credential.expires_at - now)
            .whole_seconds()
            .max(0)
    );
    v
}

/// `GET /metrics`: Prometheus text format.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
