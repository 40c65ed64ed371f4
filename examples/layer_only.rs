//! The bridge as plain session middleware: no service, no configuration
//! file, memory store, keys generated at start.
//!
//! ```sh
//! cargo run --example layer_only --no-default-features
//! curl -c jar -b jar -X POST localhost:3000/cart/apple   # anonymous cart
//! curl -c jar -b jar -X POST localhost:3000/login        # cart survives login
//! curl -c jar -b jar localhost:3000/account              # session-only page
//! ```
use std::sync::Arc;

use axum::{
    Router,
    extract::Path,
    routing::{get, post},
};
use session_bridge::bridge::{Bridge, BridgeLayer, Mode};
use session_bridge::tokens::{config::SigningAlgorithm, keys::KeyRing};
use session_bridge::{Identity, Principal, Session};

async fn add(session: Session, Path(item): Path<String>) -> String {
    let mut cart: Vec<String> = session.get("cart").await.ok().flatten().unwrap_or_default();
    cart.push(item);
    let _ = session.insert("cart", &cart).await;
    format!("cart: {cart:?}\n")
}

async fn login(
    axum::extract::State(bridge): axum::extract::State<Bridge>,
    session: Session,
) -> String {
    // A real app checks a password first.
    let alice = Principal::new("alice-id", "http://127.0.0.1:3000").with_username("alice");
    match bridge.login(&session, &alice).await {
        Ok(identity) => format!("welcome {}\n", identity.sub),
        Err(err) => format!("login failed: {err}\n"),
    }
}

async fn account(identity: Identity, session: Session) -> String {
    let cart: Vec<String> = session.get("cart").await.ok().flatten().unwrap_or_default();
    format!(
        "{} has {cart:?}\n",
        identity.username.as_deref().unwrap_or("?")
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bridge = Bridge::builder()
        .store(session_bridge_store::MemoryStore::default())
        .keys(Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256)?))
        .issuer("http://127.0.0.1:3000")
        .default_mode(Mode::Public)
        .route("/account", Mode::Session)
        .build()?;
    let app = Router::new()
        .route("/cart/{item}", post(add))
        .route("/login", post(login))
        .route("/account", get(account))
        .with_state(bridge.clone())
        .layer(BridgeLayer::new(bridge));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
