//! The demo's HTML pages and static assets.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;

use super::render::fill;
use super::{AppState, harden};
use crate::bridge::{AuthRejection, Authn, Mode, metrics};

const LANDING: &str = include_str!("assets/landing.html");
const LEGACY: &str = include_str!("assets/legacy.html");
const APP: &str = include_str!("assets/app.html");
const DEMO_JS: &str = include_str!("assets/demo.js");
const APP_JS: &str = include_str!("assets/app.js");
const DEMO_CSS: &str = include_str!("assets/demo.css");

/// Where the legacy page sends a visitor without a live session.
const LEGACY_LOGIN: &str = "/login?next=%2Fdemo%2Flegacy";

/// `GET /` and `GET /demo`.
pub(super) async fn landing() -> Response {
    page(LANDING.to_owned())
}

/// `GET /demo/app`: static; its script does the work.
pub(super) async fn app(State(state): State<AppState>) -> Response {
    let warn = warn_before(&state);
    page(fill(APP, &script_settings(&state, &warn)))
}

/// `GET /demo/legacy`: rendered on the server from the session alone, as a
/// legacy page would be.
pub(super) async fn legacy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let a = match state.bridge.authenticate(&headers, Mode::Session).await {
        Authn::Authenticated(a) => a,
        Authn::Anonymous => {
            metrics::request("demo.legacy", "none", "anonymous");
            return to_login(&state, false);
        }
        Authn::Rejected(AuthRejection::Unavailable) => {
            metrics::request("demo.legacy", "none", "unavailable");
            return AuthRejection::Unavailable.into_response();
        }
        Authn::Rejected(rejection) => {
            metrics::request("demo.legacy", "none", rejection.outcome());
            return to_login(&state, true);
        }
    };
    metrics::request("demo.legacy", "session", "ok");
    let id = &a.identity;
    let expires = id.credential.expires_at;
    let absolute = id.credential.absolute_expires_at.unwrap_or(expires);
    let groups = if id.groups.is_empty() {
        "(none)".to_owned()
    } else {
        id.groups.join(", ")
    };
    let (expires_text, expires_ts) = (when(expires), expires.unix_timestamp().to_string());
    let (absolute_text, absolute_ts) = (when(absolute), absolute.unix_timestamp().to_string());
    let auth_time = when(id.auth_time);
    let warn = warn_before(&state);
    let mut values = script_settings(&state, &warn);
    values.extend([
        ("username", id.username.as_deref().unwrap_or(&id.sub)),
        ("sub", id.sub.as_str()),
        ("groups", groups.as_str()),
        ("issuer", id.issuer.as_str()),
        ("auth_time", auth_time.as_str()),
        ("session_expires", expires_text.as_str()),
        ("session_expires_ts", expires_ts.as_str()),
        ("absolute_expires", absolute_text.as_str()),
        ("absolute_expires_ts", absolute_ts.as_str()),
    ]);
    page(fill(LEGACY, &values))
}

/// `GET /demo/static/{file}`.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "demo.js" => (DEMO_JS, "text/javascript; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "demo.css" => (DEMO_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    harden(h);
    r
}

/// What the pages' script reads from `<body data-…>`; `warn` is
/// [`warn_before`]'s answer.
fn script_settings<'a>(state: &'a AppState, warn: &'a str) -> Vec<(&'static str, &'a str)> {
    let header = state
        .demo
        .as_ref()
        .map_or("x-csrf-token", |demo| demo.csrf_header.as_str());
    vec![
        ("csrf_cookie", state.bridge.cookies().csrf_name()),
        ("csrf_header", header),
        ("warn_before", warn),
    ]
}

/// Seconds before the end at which the pages warn.
fn warn_before(state: &AppState) -> String {
    state
        .demo
        .as_ref()
        .map_or(60, |demo| demo.warn_before.as_secs())
        .to_string()
}

/// `2026-11-29 15:02:19 UTC`, as the pages' script writes it too.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn page(html: String) -> Response {
    let mut r = Html(html).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    harden(h);
    r
}

/// 303 to the login page, clearing a dead session's cookies.
fn to_login(state: &AppState, clear: bool) -> Response {
    let mut r = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(LEGACY_LOGIN))],
    )
        .into_response();
    if clear {
        for cookie in state.bridge.cookies().clear_all() {
            r.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::super::render::placeholders;
    use super::*;

    #[test]
    fn every_placeholder_of_every_page_is_supplied() {
        let settings = ["csrf_cookie", "csrf_header", "warn_before"];
        let legacy = [
            "username",
            "sub",
            "groups",
            "issuer",
            "auth_time",
            "session_expires",
            "session_expires_ts",
            "absolute_expires",
            "absolute_expires_ts",
        ];
        assert!(placeholders(LANDING).is_empty());
        for name in placeholders(APP) {
            assert!(settings.contains(&name), "app.html: {name}");
        }
        for name in placeholders(LEGACY) {
            assert!(
                settings.contains(&name) || legacy.contains(&name),
                "legacy.html: {name}"
            );
        }
    }
}
