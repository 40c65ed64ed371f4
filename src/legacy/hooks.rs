//! Where the service's login, logout and `either` exchange meet the PHP
//! sessions: each a no-op when `[legacy_php]` is not configured.

use axum::http::HeaderValue;
use axum::http::{HeaderMap, header};
use session_bridge_php::BridgeIdentity;

use crate::bridge::{AuthRejection, Authenticated, Bridge, metrics};
use crate::login::AuthenticatedUser;

/// After a login through the bridge: the PHP session for `user`, in the
/// token `family` of the bridge session just started, and its
/// `Set-Cookie`. Fails (503) when the PHP store is unreachable, so a user
/// is never logged in on one side only.
pub(crate) async fn on_login(
    bridge: &Bridge,
    headers: &HeaderMap,
    user: &AuthenticatedUser,
    family: &str,
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
    match php.start(headers, &identity, family).await {
        Ok(id) => Ok(Some(php.set_cookie(&id))),
        Err(err) => {
            tracing::warn!(error = %crate::error_chain(&err), "login failed: PHP session store unavailable");
            Err(AuthRejection::Unavailable)
        }
    }
}

/// What a logout ends, beyond the PHP session the request's cookie names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// Nothing else (no valid credential was presented).
    ThisBrowser,
    /// Token family `family` of user `sub`: every PHP session in it.
    Family {
        /// The user.
        sub: &'a str,
        /// The family.
        family: &'a str,
    },
    /// Every PHP session of user `sub` ("log out everywhere").
    User {
        /// The user.
        sub: &'a str,
    },
}

impl<'a> Ending<'a> {
    /// The family a logout authenticated by `a` ends.
    pub(crate) fn family_of(a: &'a Authenticated) -> Self {
        match a.family.as_deref() {
            Some(family) => Self::Family {
                sub: &a.identity.sub,
                family,
            },
            None => Self::ThisBrowser,
        }
    }
}

/// On logout: delete the PHP session the request's cookie names and the
/// PHP sessions of what `ending` names (on other devices too: PHP pages
/// read `$_SESSION` alone, so only deleting the records logs them out).
/// Fails (503) when they could not be deleted, before anything else is
/// ended, so the logout can be retried.
pub(crate) async fn on_logout(
    bridge: &Bridge,
    headers: &HeaderMap,
    ending: Ending<'_>,
) -> Result<(), AuthRejection> {
    let Some(php) = bridge.legacy() else {
        return Ok(());
    };
    let ended = match ending {
        Ending::ThisBrowser => Ok(0),
        Ending::Family { sub, family } => php.end_sessions_of(sub, Some(family)).await,
        Ending::User { sub } => php.end_sessions_of(sub, None).await,
    };
    match (php.end(headers).await, ended) {
        (Ok(_), Ok(n)) => {
            if n > 0 {
                tracing::debug!(sessions = n, "logout: PHP sessions ended");
            }
            Ok(())
        }
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %crate::error_chain(&err), "logout failed: could not delete the PHP sessions");
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
