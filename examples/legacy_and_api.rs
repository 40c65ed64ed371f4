//! An axum app with legacy HTML pages on server-side sessions and a JSON API
//! on tokens, sharing one identity through session-bridge.
//!
//! ```sh
//! cargo run --example legacy_and_api
//! # open http://127.0.0.1:3000/legacy/account, log in as the printed user,
//! # then call the API the way a script would:
//! curl -b cookies.txt http://127.0.0.1:3000/api/me
//! ```
//!
//! - `/legacy/*` accepts only the session cookie (the old stack);
//! - `/api/*` accepts only tokens: the token cookie a browser got at login,
//!   or `Authorization: Bearer` for other clients;
//! - everything else accepts both (`either`): a session-only request gets a
//!   token cookie minted on the way out, so pages can move to the API one by
//!   one without anyone logging in again;
//! - `/login`, `/logout`, `/logout/all`, `/token`, `/session`, the JWKS and
//!   `/metrics` come from the service router.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use session_bridge::Identity;
use session_bridge::bridge::BridgeLayer;
use session_bridge::bridge::config::{Mode, RouteRuleConfig, Unauthenticated};
use session_bridge::config::{Config, Overrides};
use session_bridge::service::{self, AppState};
use session_bridge::stores::Stores;
use session_bridge::tokens::keys::KeyRing;

/// A legacy page: rendered on the server from the session.
async fn account(identity: Identity) -> Html<String> {
    let groups = identity.groups.join(", ");
    let name = identity.username.as_deref().unwrap_or(&identity.sub);
    Html(format!(
        "<!doctype html><h1>Account</h1><p>Signed in as {} (groups: {}).</p>\
         <p>Session ends at {} (Unix time).</p>",
        escape(name),
        escape(&groups),
        identity.credential.expires_at.unix_timestamp()
    ))
}

/// An API route: the same identity, proved by a token.
async fn me(identity: Identity) -> axum::Json<Identity> {
    axum::Json(identity)
}

/// A page open to everyone, personalised when someone is signed in.
async fn home(identity: Option<Identity>) -> Html<String> {
    Html(match identity {
        Some(id) => format!(
            "<p>Hello {}. <a href=\"/legacy/account\">Account</a></p>",
            escape(&id.sub)
        ),
        None => "<p><a href=\"/login?next=/legacy/account\">Sign in</a></p>".to_owned(),
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let overrides = Overrides {
        listen: Some(addr),
        data_dir: Some(".data-example".into()),
        ..Overrides::default()
    };
    let mut config = Config::load(None, &overrides)?;
    config.policy.unauthenticated = Unauthenticated::Redirect;
    config.policy.routes = vec![
        RouteRuleConfig::new("/legacy/*", Mode::Session),
        RouteRuleConfig::new("/api/*", Mode::Token),
        RouteRuleConfig::new("/", Mode::Public),
    ];
    session_bridge::telemetry::init(&config.log);

    std::fs::create_dir_all(&config.data_dir)?;
    let stores = Stores::open(&config).await?;
    let (keys, _) = KeyRing::load_or_generate(&config.tokens, &config.data_dir)?;
    let issuer = format!("http://{addr}");
    let (state, password) = AppState::build(&config, stores, Arc::new(keys), issuer).await?;
    if let Some(password) = password {
        println!(
            "log in as `{}` with password `{}`",
            password.username(),
            password.expose()
        );
    }

    let app = Router::new()
        .route("/", get(home))
        .route("/legacy/account", get(account))
        .route("/api/me", get(me))
        .layer(BridgeLayer::new(state.bridge.clone()));
    let app = service::router(state).merge(app);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
