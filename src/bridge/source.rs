//! Other places a credential can come from: a legacy app's own session
//! (PHP's today, Rails' or Express' tomorrow), tried after the bridge's own
//! credentials.
//!
//! Each source is one implementation of [`CredentialSource`]; the bridge
//! holds a list of them and asks each in turn. "Not mine"
//! ([`Authn::Anonymous`]) means "try the next one", as in Ory Oathkeeper's
//! authenticator pipeline. A source also hears about the bridge's logins and
//! logouts, so a user is never logged in on one side only.
//!
//! # Contract
//!
//! - [`authenticate`](CredentialSource::authenticate) never panics and fails
//!   closed: a store it cannot reach is
//!   [`AuthRejection::Unavailable`], a login the revocation state ended is
//!   [`AuthRejection::Revoked`]. An identity it returns carries
//!   [`CredentialKind::LegacySession`](crate::CredentialKind) and a token
//!   family (`Authenticated::family`), so a logout through the bridge can end
//!   it.
//! - [`on_login`](CredentialSource::on_login) and
//!   [`on_logout`](CredentialSource::on_logout) fail with
//!   [`AuthRejection::Unavailable`] when their store is unreachable; the
//!   bridge then refuses the login or logout as a whole (it can be retried).
//!
//! ```
//! use async_trait::async_trait;
//! use axum::http::HeaderMap;
//! use session_bridge::bridge::{Authn, CredentialSource};
//! use session_bridge_store::RevocationStore;
//!
//! /// Trusts nothing: every request is "not mine".
//! #[derive(Debug)]
//! struct Nobody;
//!
//! #[async_trait]
//! impl CredentialSource for Nobody {
//!     fn name(&self) -> &'static str {
//!         "nobody"
//!     }
//!     async fn authenticate(&self, _: &HeaderMap, _: &dyn RevocationStore) -> Authn {
//!         Authn::Anonymous
//!     }
//! }
//! ```

use std::any::Any;
use std::fmt;

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue};
use session_bridge_store::RevocationStore;

use super::{AuthRejection, Authn};
use crate::identity::Principal;

/// Another place a credential can come from. See the [module docs](self)
/// for the contract.
#[async_trait]
pub trait CredentialSource: Any + fmt::Debug + Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Authenticate the request from this source's own credential:
    /// [`Authn::Anonymous`] when the request carries none ("try the next").
    async fn authenticate(&self, headers: &HeaderMap, revocation: &dyn RevocationStore) -> Authn;

    /// A user logged in through the bridge, in token `family`: start this
    /// source's own session for them (in that family, so logging out either
    /// ends both), returning the `Set-Cookie` values to send.
    async fn on_login(
        &self,
        headers: &HeaderMap,
        user: &Principal,
        family: &str,
    ) -> Result<Vec<HeaderValue>, AuthRejection> {
        let _ = (headers, user, family);
        Ok(Vec::new())
    }

    /// The request logs out: end this source's session that the request
    /// names, and every session `scope` names (on other devices too).
    async fn on_logout(
        &self,
        headers: &HeaderMap,
        scope: LogoutScope<'_>,
    ) -> Result<(), AuthRejection> {
        let _ = (headers, scope);
        Ok(())
    }

    /// `Set-Cookie` values that clear this source's cookies in the browser.
    fn clear_cookies(&self) -> Vec<HeaderValue> {
        Vec::new()
    }
}

/// What a logout ends, beyond the session the request's own cookies name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutScope<'a> {
    /// Nothing else (no valid bridge credential was presented).
    ThisBrowser,
    /// Every session in token family `family` of user `sub`.
    Family {
        /// The user.
        sub: &'a str,
        /// The family.
        family: &'a str,
    },
    /// Every session of user `sub` ("log out everywhere").
    User {
        /// The user.
        sub: &'a str,
    },
}

impl<'a> LogoutScope<'a> {
    /// The family a logout authenticated by `a` ends.
    pub fn family_of(a: &'a super::Authenticated) -> Self {
        match a.family.as_deref() {
            Some(family) => Self::Family {
                sub: &a.identity.sub,
                family,
            },
            None => Self::ThisBrowser,
        }
    }
}

/// The sources of a bridge, asked in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources(Vec<std::sync::Arc<dyn CredentialSource>>);

impl Sources {
    pub(crate) fn push(&mut self, source: std::sync::Arc<dyn CredentialSource>) {
        self.0.push(source);
    }

    /// The source of type `T`, if there is one.
    pub(crate) fn get<T: CredentialSource>(&self) -> Option<&T> {
        self.0
            .iter()
            .find_map(|s| (s.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// The first source that recognises the request's credential.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        revocation: &dyn RevocationStore,
    ) -> Authn {
        for source in &self.0 {
            match source.authenticate(headers, revocation).await {
                Authn::Anonymous => {}
                other => return other,
            }
        }
        Authn::Anonymous
    }

    /// Every source's `on_login`; the first failure ends the login.
    pub(crate) async fn on_login(
        &self,
        headers: &HeaderMap,
        user: &Principal,
        family: &str,
    ) -> Result<Vec<HeaderValue>, AuthRejection> {
        let mut cookies = Vec::new();
        for source in &self.0 {
            cookies.extend(source.on_login(headers, user, family).await?);
        }
        Ok(cookies)
    }

    /// Every source's `on_logout`; the first failure ends the logout.
    pub(crate) async fn on_logout(
        &self,
        headers: &HeaderMap,
        scope: LogoutScope<'_>,
    ) -> Result<(), AuthRejection> {
        for source in &self.0 {
            source.on_logout(headers, scope).await?;
        }
        Ok(())
    }

    pub(crate) fn clear_cookies(&self) -> Vec<HeaderValue> {
        self.0.iter().flat_map(|s| s.clear_cookies()).collect()
    }
}
