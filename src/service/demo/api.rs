//! The demo's JSON endpoints: an API route proved by the token, and the
//! explicit session extension behind "Stay signed in".

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::{AppState, harden};
use crate::bridge::{AuthRejection, Authn, LoadedSession, Mode, metrics};
use crate::identity::Identity;

/// `GET /demo/api/whoami`: mode `token`, as a new API route would be: the
/// token cookie (or a bearer header) proves the caller, no store round trip
/// but the revocation check. A 401 for an expired token says
/// `"reason": "expired"`, the page's cue to `POST /token`.
pub(super) async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let authn = state.bridge.authenticate(&headers, Mode::Token).await;
    let outcome = authn.outcome();
    match authn {
        Authn::Authenticated(a) => {
            metrics::request("demo.api", a.identity.credential.kind.as_str(), outcome);
            json_response(&a.identity)
        }
        Authn::Anonymous => {
            metrics::request("demo.api", "none", outcome);
            rejected(AuthRejection::MissingCredential)
        }
        Authn::Rejected(r) => {
            metrics::request("demo.api", "none", outcome);
            rejected(r)
        }
    }
}

/// `POST /demo/session/extend`: "Stay signed in". Sets the session's idle
/// expiry to now + `idle_ttl` (never past its absolute end) and re-mints the
/// token cookie, so both credentials live on without a new login. Needs a
/// live session and the CSRF proof; answers like `GET /session`.
///
/// `Sessions::load` already extends lazily (once less than half of the idle
/// time is left); this endpoint exists because the banner shows *before*
/// that point and a click must visibly move the end.
pub(super) async fn extend(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(demo) = state.demo.clone() else {
        return rejected(AuthRejection::MissingCredential);
    };
    let session = match state.bridge.authenticate(&headers, Mode::Session).await {
        Authn::Authenticated(a) => match a.session {
            Some(session) => session,
            None => return rejected(AuthRejection::InvalidSession),
        },
        Authn::Anonymous => return rejected(AuthRejection::MissingCredential),
        Authn::Rejected(r) => return rejected(r),
    };
    if !state.bridge.csrf().allows(&headers) {
        return rejected(AuthRejection::CsrfFailed);
    }
    let store = &state.stores.sessions;
    let mut record = match store.load(&session.id).await {
        Ok(Some(record)) => record,
        // Deleted between the check and now (a logout in another tab).
        Ok(None) => return rejected(AuthRejection::InvalidSession),
        Err(err) => {
            tracing::warn!(error = %err, "extend: session store unavailable");
            return rejected(AuthRejection::Unavailable);
        }
    };
    let now = OffsetDateTime::now_utc();
    let until = (now + demo.idle_ttl).min(session.absolute_expires_at());
    if until > record.expiry_date {
        record.expiry_date = until;
        if let Err(err) = store.save(&record).await {
            tracing::warn!(error = %err, "extend: session store unavailable");
            return rejected(AuthRejection::Unavailable);
        }
    }
    let session = LoadedSession {
        expires_at: record.expiry_date,
        ..session
    };
    let identity = session.to_identity();
    let mut response = json_response(&identity);
    match state.bridge.mint_for(&identity, &session.identity.family) {
        Ok(token) => {
            response.headers_mut().append(
                header::SET_COOKIE,
                state
                    .bridge
                    .cookies()
                    .set_token(token.token, token.expires_at - now),
            );
        }
        Err(err) => {
            tracing::error!(error = %crate::error_chain(&err), "extend: could not mint a token");
        }
    }
    tracing::info!(sub = %identity.sub, "session extended");
    response
}

/// The identity as `GET /session` shows it: `credential.expires_at`,
/// `credential.absolute_expires_at` and `expires_in` (seconds, by the
/// server's clock, so a page with a skewed clock still counts right).
fn json_response(identity: &Identity) -> Response {
    let mut body = serde_json::to_value(identity).unwrap_or_default();
    body["expires_in"] = json!(
        (identity.credential.expires_at - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(0)
    );
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(r.headers_mut());
    r
}

fn rejected(rejection: AuthRejection) -> Response {
    let mut r = rejection.into_response();
    harden(r.headers_mut());
    r
}
