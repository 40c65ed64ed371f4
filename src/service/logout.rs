//! `POST /logout`: ends every credential the request presents.
//!
//! A request can carry a session cookie, a token cookie and a bearer header
//! at once. Each is judged on its own: one that proves an identity is ended
//! (its session deleted, its token and token family killed); one that is
//! already invalid, expired or revoked has nothing left to end. Live
//! credentials that name different users or token families are refused
//! with 400, so a stray header can never turn a logout into a 200 that
//! leaves the session alive.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::AppState;
use super::auth::{destroy_cookie_session, error, logged_out};
use crate::bridge::LogoutScope;
use crate::bridge::{AuthRejection, Authenticated, Authn, Mode, cookies};
use crate::identity::CredentialKind;

/// `POST /logout`: end the session, the tokens presented and their family.
pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let live = match live_credentials(&state, &headers).await {
        Ok(live) => live,
        Err(response) => return response,
    };
    if live.is_empty() {
        return nothing_live(&state, &headers).await;
    }
    if let Some(response) = mismatch(&live) {
        return response;
    }
    // A bearer header cannot be attached by another site's form or script
    // (not without CORS consent), so with a live one the request is no CSRF.
    let bearer = live
        .iter()
        .any(|a| a.identity.credential.kind == CredentialKind::Bearer);
    if !bearer && !state.bridge.csrf().allows(&headers) {
        return AuthRejection::CsrfFailed.into_response();
    }
    // The family being logged out ends on the credential sources too (the
    // PHP sessions of this login, on every device).
    let ending = live
        .iter()
        .find(|a| a.family.is_some())
        .map_or(LogoutScope::ThisBrowser, LogoutScope::family_of);
    if let Err(r) = state.bridge.sources_logout(&headers, ending).await {
        return r.into_response();
    }
    if let Err(response) = end(&state, &live).await {
        return response;
    }
    if let Err(r) = destroy_cookie_session(&state, &headers).await {
        return r;
    }
    tracing::info!(sub = %live[0].identity.sub, credentials = live.len(), "logout");
    logged_out(&state, &headers)
}

/// Each presented credential that still proves an identity. A store that
/// cannot answer is a 503: whether the credential is live is unknown.
async fn live_credentials(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Vec<Authenticated>, Response> {
    let bridge = &state.bridge;
    let mut judged = Vec::new();
    if headers.contains_key(header::AUTHORIZATION) {
        // With a bearer header, `token` mode judges the header alone.
        judged.push(bridge.authenticate(headers, Mode::Token).await);
    }
    if cookies::read(headers, bridge.cookies().token_name()).is_some() {
        let mut only_cookie = headers.clone();
        only_cookie.remove(header::AUTHORIZATION);
        judged.push(bridge.authenticate(&only_cookie, Mode::Token).await);
    }
    if cookies::read(headers, bridge.cookies().session_name()).is_some() {
        judged.push(bridge.authenticate(headers, Mode::Session).await);
    }
    let mut live = Vec::new();
    for authn in judged {
        match authn {
            Authn::Authenticated(a) => live.push(a),
            Authn::Rejected(AuthRejection::Unavailable) => {
                return Err(AuthRejection::Unavailable.into_response());
            }
            // Invalid, expired or revoked: nothing left to end.
            Authn::Rejected(_) | Authn::Anonymous => {}
        }
    }
    Ok(live)
}

/// 400 when live credentials name different users or token families.
fn mismatch(live: &[Authenticated]) -> Option<Response> {
    let first = &live[0];
    let differs = live.iter().any(|a| {
        a.identity.sub != first.identity.sub
            || matches!((&a.family, &first.family), (Some(x), Some(y)) if x != y)
    });
    differs.then(|| {
        tracing::info!("logout refused: the credentials name different users or sessions");
        error(
            StatusCode::BAD_REQUEST,
            "credential_mismatch",
            "the credentials presented belong to different users or sessions; log out each on its own",
        )
    })
}

/// Kill every family and token, delete every session.
async fn end(state: &AppState, live: &[Authenticated]) -> Result<(), Response> {
    let bridge = &state.bridge;
    let until = OffsetDateTime::now_utc() + state.max_token_ttl;
    let unavailable = |err: &dyn std::fmt::Display| {
        tracing::warn!(error = %err, "logout: store unavailable");
        AuthRejection::Unavailable.into_response()
    };
    for a in live {
        if let Some(family) = &a.family {
            bridge
                .kill(family, until)
                .await
                .map_err(|e| unavailable(&crate::error_chain(&e)))?;
        }
        let credential = &a.identity.credential;
        if credential.kind != CredentialKind::Session && !credential.id.is_empty() {
            bridge
                .kill(&credential.id, credential.expires_at.max(until))
                .await
                .map_err(|e| unavailable(&crate::error_chain(&e)))?;
        }
        if let Some(session) = &a.session {
            bridge
                .sessions()
                .destroy(&session.id)
                .await
                .map_err(|e| unavailable(&e))?;
        }
    }
    Ok(())
}

/// No bridge credential is live: a login the PHP app recorded may still
/// be (`[legacy_php]`); otherwise just clear the browser's cookies.
async fn nothing_live(state: &AppState, headers: &HeaderMap) -> Response {
    let bridge_credential = headers.contains_key(header::AUTHORIZATION)
        || cookies::read(headers, state.bridge.cookies().token_name()).is_some()
        || cookies::read(headers, state.bridge.cookies().session_name()).is_some();
    if !bridge_credential
        && let Authn::Authenticated(a) = state.bridge.authenticate(headers, Mode::Session).await
    {
        if !state.bridge.csrf().allows(headers) {
            return AuthRejection::CsrfFailed.into_response();
        }
        if let Err(r) = state
            .bridge
            .sources_logout(headers, LogoutScope::family_of(&a))
            .await
        {
            return r.into_response();
        }
        if let Err(response) = end(state, std::slice::from_ref(&a)).await {
            return response;
        }
        tracing::info!(sub = %a.identity.sub, "logout");
        return logged_out(state, headers);
    }
    if state.bridge.csrf().allows(headers)
        && let Err(r) = state
            .bridge
            .sources_logout(headers, LogoutScope::ThisBrowser)
            .await
    {
        return r.into_response();
    }
    if let Err(r) = destroy_cookie_session(state, headers).await {
        return r;
    }
    logged_out(state, headers)
}
