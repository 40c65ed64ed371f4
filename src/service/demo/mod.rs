//! The demo pages: one login shared by a "legacy" page rendered from the
//! server-side session and an "app" page whose script calls a JSON API
//! proved by the token cookie, with a banner that warns before the session
//! ends and offers to extend it.
//!
//! Served when `[demo] enabled` (default: the development setup only).
//! Routes:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /`, `GET /demo` | landing page |
//! | `GET /demo/legacy` | server-rendered from the session (mode `session`); no session → `/login?next=/demo/legacy` |
//! | `GET /demo/app` | static page; its script calls `/demo/api/whoami` |
//! | `GET /demo/api/whoami` | JSON identity, mode `token` (token cookie or bearer) |
//! | `POST /demo/session/extend` | push the session's idle expiry to now + `idle_ttl` (never past its absolute end) and re-mint the token cookie |
//! | `GET /demo/static/*` | the pages' script and style sheet |
//!
//! The browser side is plain HTML and a little script, all from this origin:
//! the pages' Content-Security-Policy allows nothing else. Script never sees
//! a token: the API call rides on the HttpOnly token cookie, and state
//! changes send the CSRF cookie's value in the CSRF header.

mod api;
mod pages;
mod render;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};

use super::AppState;
use crate::config::Config;

/// What the demo pages need from the configuration.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// Warn this long before the session ends.
    pub warn_before: Duration,
    /// The session idle lifetime (what "Stay signed in" grants).
    pub idle_ttl: Duration,
    /// The CSRF double-submit header's name.
    pub csrf_header: String,
}

impl DemoSettings {
    /// The settings of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            warn_before: config.demo.warn_before,
            idle_ttl: config.session.idle_ttl,
            csrf_header: config.csrf.header.to_ascii_lowercase(),
        }
    }
}

/// The demo's routes (merged into the service's router when enabled).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::landing))
        .route("/demo", get(pages::landing))
        .route("/demo/legacy", get(pages::legacy))
        .route("/demo/app", get(pages::app))
        .route("/demo/api/whoami", get(api::whoami))
        .route("/demo/session/extend", post(api::extend))
        .route("/demo/static/{file}", get(pages::asset))
}

/// Only our own script and style, no framing, no plugins, no foreign forms.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Headers every demo response carries.
fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
