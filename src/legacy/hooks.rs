//! Where the service's login and logout meet the credential sources (the
//! PHP sessions when `[legacy_php]` is configured): each a no-op when the
//! bridge has none.

use axum::http::{HeaderMap, HeaderValue};

use crate::bridge::{AuthRejection, Bridge};
use crate::identity::Principal;

/// After a login through the bridge: the sources' sessions for `user` and
/// their `Set-Cookie` values. Fails (503) when a source's store is
/// unreachable, so a user is never logged in on one side only.
pub(crate) async fn on_login(
    bridge: &Bridge,
    headers: &HeaderMap,
    user: &Principal,
) -> Result<Vec<HeaderValue>, AuthRejection> {
    bridge.sources_login(headers, user).await
}

/// On logout (one or everywhere): end the sources' sessions the request
/// names. Fails (503) when one could not be ended, before anything else is
/// ended, so the logout can be retried.
pub(crate) async fn on_logout(bridge: &Bridge, headers: &HeaderMap) -> Result<(), AuthRejection> {
    bridge.sources_logout(headers).await
}

/// `Set-Cookie` values clearing the sources' cookies.
pub(crate) fn clear_cookie(bridge: &Bridge) -> Vec<HeaderValue> {
    bridge.sources_clear_cookies()
}
