//! Where the service's login, logout and `either` exchange meet the PHP
//! sessions: each a no-op when `[legacy_php]` is not configured.

use axum::http::HeaderValue;
use axum::http::{HeaderMap, header};
use session_bridge_php::BridgeIdentity;

use crate::bridge::{AuthRejection, Authenticated, Bridge, metrics};
use crate::login::AuthenticatedUser;

/// After a login through the bridge: the PHP session for `user` and its
/// `Set-Cookie`. Fails (503) when the PHP store is unreachable, so a user
/// is never logged in on one side only.
pub(crate) async fn on_login(
    bridge: &Bridge,
    headers: &HeaderMap,
    user: &AuthenticatedUser,
) -> Result<Option<HeaderValue>, AuthRejection> {
    let Some(php) = bridge.legacy() else {
        return Ok(None);
    };
    let identity = BridgeIdentity {
        sub: user.sub.clone(),
        username: Some(user.username.clone()).filter(|u| !u.is_empty()),
        groups: user.groups.clone(),
        auth_time: Some(user.auth_time.unix_timestamp()),
        iss: user.issuer.clone(),
    };
    match php.start(headers, &identity).await {
        Ok(id) => Ok(Some(php.set_cookie(&id))),
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "login failed: PHP session store unavailable");
            Err(AuthRejection::Unavailable)
        }
    }
}

/// On logout (one or everywhere): delete the PHP session the request's
/// cookie names. Fails (503) when it could not be deleted, before anything
/// else is ended, so the logout can be retried.
pub(crate) async fn on_logout(bridge: &Bridge, headers: &HeaderMap) -> Result<(), AuthRejection> {
    let Some(php) = bridge.legacy() else {
        return Ok(());
    };
    match php.end(headers).await {
        Ok(_) => Ok(()),
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "logout failed: could not delete the PHP session");
            Err(AuthRejection::Unavailable)
        }
    }
}

/// `Set-Cookie` clearing the PHP session cookie, when configured.
pub(crate) fn clear_cookie(bridge: &Bridge) -> Option<HeaderValue> {
    bridge.legacy().map(|php| php.clear_cookie())
}

/// `either` routes and a PHP login: a bridge session and a token cookie in
/// the PHP session's token family, so later requests carry bridge
/// credentials and a logout through the bridge ends all three.
pub(crate) async fn link(bridge: &Bridge, a: &Authenticated, headers: &mut HeaderMap) {
    let Some(family) = a.family.as_deref() else {
        return;
    };
    let id = &a.identity;
    let user = AuthenticatedUser {
        sub: id.sub.clone(),
        username: id.username.clone().unwrap_or_default(),
        groups: id.groups.clone(),
        email: id.email.clone(),
        issuer: id.issuer.clone(),
        auth_time: id.auth_time,
    };
    let session = match bridge
        .sessions()
        .create(&user, Some(family.to_owned()))
        .await
    {
        Ok(session) => session,
        Err(err) => {
            tracing::warn!(error = %err, "could not link a session to a PHP login");
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
            tracing::warn!(error = %crate::error_chain(&err), "could not mint a token for a PHP login")
        }
    }
}
