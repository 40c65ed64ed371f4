//! Where the service's login and logout meet the credential sources (the
//! PHP sessions when `[legacy_php]` is configured): each a no-op when the
//! bridge has none.

use axum::http::{HeaderMap, HeaderValue};

pub(crate) use crate::bridge::LogoutScope as Ending;
use crate::bridge::{AuthRejection, Bridge};
use crate::identity::Principal;

/// After a login through the bridge: the sources' sessions for `user`, in
/// the token `family` of the bridge session just started, and their
/// `Set-Cookie` values. Fails (503) when a source's store is unreachable, so
/// a user is never logged in on one side only.
pub(crate) async fn on_login(
    bridge: &Bridge,
    headers: &HeaderMap,
    user: &Principal,
    family: &str,
) -> Result<Vec<HeaderValue>, AuthRejection> {
    bridge.sources_login(headers, user, family).await
}

/// On logout: end the sources' sessions the request's cookies name and
/// those `ending` names (on other devices too: PHP pages read `$_SESSION`
/// alone, so only deleting the records logs them out). Fails (503) when
/// they could not be ended, before anything else is ended, so the logout can
/// be retried.
pub(crate) async fn on_logout(
    bridge: &Bridge,
    headers: &HeaderMap,
    ending: Ending<'_>,
) -> Result<(), AuthRejection> {
    bridge.sources_logout(headers, ending).await
}

/// `Set-Cookie` values clearing the sources' cookies.
pub(crate) fn clear_cookie(bridge: &Bridge) -> Vec<HeaderValue> {
    bridge.sources_clear_cookies()
}
