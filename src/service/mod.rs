//! The `session-bridge serve` HTTP service.

mod app;
mod auth;
mod demo;
mod errors;
mod gateway;
mod health;
mod logout;
mod oidc;
mod redirect;
mod server;

pub use app::{AppState, BuildError};
pub use demo::DemoSettings;
pub use gateway::config::{ForwardAuthConfig, IdentityHeaderNames, ProxyConfig, UpstreamConfig};
pub use redirect::safe_next;
pub use server::ServerConfig;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::stores::{OpenError, Stores};
use crate::tokens::keys::{KeyError, KeyRing};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// The signing keys could not be loaded or generated.
    #[error("cannot load the signing keys")]
    Keys(#[source] KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The application could not be assembled.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The server failed while running.
    #[error("server error")]
    Serve(#[source] std::io::Error),
}

/// Build the router for `state`.
pub fn router(state: AppState) -> Router {
    // Auth endpoints take small bodies; refuse big ones before parsing.
    let auth = Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(logout::logout))
        .route("/logout/all", post(auth::logout_all))
        .route("/token", post(auth::token))
        .route("/session", get(auth::whoami).post(auth::session_from_token))
        .layer(DefaultBodyLimit::max(16 * 1024));
    let demo = match &state.demo {
        Some(_) => demo::routes(),
        None => Router::new(),
    };
    let own = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(auth::metrics))
        .merge(auth)
        .merge(demo)
        .merge(oidc::routes(&state))
        .merge(crate::tokens::publish::router(
            Arc::clone(&state.keys),
            state.issuer.clone(),
        ))
        // Not around the gateway: the proxy relays upstream answers as they are.
        .layer(axum::middleware::map_response(errors::as_json));
    own
        // Last: the proxy is the fallback for paths no route above serves.
        .merge(gateway::routes(&state))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::PROXY_AUTHORIZATION,
                    header::COOKIE,
                    header::SET_COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        // Path only: query strings can carry codes and tokens.
                        .make_span_with(|req: &Request<_>| {
                            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
                        })
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

/// Open everything `config` names, then serve until `shutdown` resolves,
/// finishing in-flight requests (bounded by `shutdown_timeout`).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    create_data_dir(&config.data_dir)?;
    let stores = Stores::open(&config).await?;
    let tokens = config.tokens.clone();
    let data_dir = config.data_dir.clone();
    // RSA key generation takes a moment: keep it off the async workers.
    let (keys, generated) =
        tokio::task::spawn_blocking(move || KeyRing::load_or_generate(&tokens, &data_dir))
            .await
            .map_err(|e| ServeError::Serve(std::io::Error::other(e)))?
            .map_err(ServeError::Keys)?;
    let keys = Arc::new(keys);
    keys.spawn_reload_task(config.tokens.reload_interval);
    if config.is_development() {
        tracing::warn!(
            data_dir = %config.data_dir.display(),
            keys_generated = generated,
            "development setup: embedded store and signing keys kept in the data directory; \
             configure a shared store and managed keys before production use"
        );
    } else if generated {
        tracing::warn!(path = %keys.path().display(), "generated new signing keys");
    }
    let listener = server::bind(config.listen).map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    // Without a configured public URL the issuer is the address actually
    // bound (which differs from `listen` when it asks for port 0).
    let issuer = match &config.public_url {
        Some(_) => config.public_url(),
        None => format!("http://{local}"),
    };
    // Built before "listening" is logged: a broken users file or trust
    // setting must stop the start before anyone is told it serves.
    let (state, dev_password) = AppState::build(&config, stores, keys, issuer.clone()).await?;
    tracing::info!(addr = %local, store = config.store.kind.as_str(), issuer = %issuer, "listening");
    if let Some(password) = dev_password {
        // Printed once, on stdout, never through the logs.
        println!(
            "\n  Development user created: log in at {issuer}/login as `{}` with password `{}`\n  (shown once; manage users with `session-bridge users`)\n",
            password.username(),
            password.expose()
        );
    }
    if state.demo.is_some() {
        println!("  Demo: open {issuer}/demo ([demo] enabled = false turns it off)\n");
    }
    let proxied = !config.proxy.upstreams.is_empty();
    server::run(
        listener,
        router(state),
        &config.server,
        proxied,
        shutdown,
        config.shutdown_timeout,
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

fn create_data_dir(path: &std::path::Path) -> Result<(), ServeError> {
    crate::private_file::create_private_dir(path).map_err(|source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
