//! Request flows through `BridgeLayer` on an axum app, run in-process with
//! `tower::ServiceExt::oneshot`. `route_tests!(async { store })` runs them
//! on any store that holds sessions and revocation state; the in-process
//! binary (`tests/layer.rs`) runs them on the memory and embedded stores, the
//! live-server suite on Redis and DynamoDB.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use session_bridge::bridge::{Bridge, BridgeLayer, Mode};
use session_bridge::tokens::config::SigningAlgorithm;
use session_bridge::tokens::keys::KeyRing;
use session_bridge::{Identity, Principal, Session};
use session_bridge_store::{
    ChangeBatch, Cursor, Epoch, Id, Record, RevocationStore, SessionStore, StoreResult,
};
use time::OffsetDateTime;
use tower::ServiceExt as _;
use tower_sessions_core::session_store;

pub const ORIGIN: &str = "http://app.test";

/// A store that counts session loads (the round trips a request costs).
#[derive(Debug, Clone)]
pub struct Counting<S> {
    pub inner: S,
    pub loads: Arc<AtomicUsize>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            loads: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for Counting<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(record).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id).await
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

#[async_trait]
impl<S: RevocationStore + Clone> RevocationStore for Counting<S> {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        self.inner.epoch(user).await
    }
    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        self.inner.bump_epoch(user, to).await
    }
    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        self.inner.kill(id, expires_at).await
    }
    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        self.inner.is_killed(id).await
    }
    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        self.inner.changes_since(since, limit).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

pub fn bridge<S>(store: S) -> Bridge
where
    S: SessionStore + RevocationStore + Clone,
{
    Bridge::builder()
        .store(store)
        .keys(Arc::new(
            KeyRing::in_memory(SigningAlgorithm::ES256).unwrap(),
        ))
        .issuer(ORIGIN)
        .default_mode(Mode::Public)
        .route("/account", Mode::Session)
        .route("/api/*", Mode::Token)
        .route("/either/*", Mode::Either)
        .build()
        .unwrap()
}

async fn cart(session: Session) -> String {
    let cart: Vec<String> = session.get("cart").await.unwrap().unwrap_or_default();
    cart.join(",")
}

async fn add(session: Session, Path(item): Path<String>) -> String {
    let mut cart: Vec<String> = session.get("cart").await.unwrap().unwrap_or_default();
    cart.push(item);
    session.insert("cart", &cart).await.unwrap();
    cart.join(",")
}

async fn login(State(bridge): State<Bridge>, session: Session, Path(user): Path<String>) -> String {
    let user = Principal::new(format!("{user}-id"), ORIGIN).with_username(user);
    bridge.login(&session, &user).await.unwrap().sub.clone()
}

async fn logout(State(bridge): State<Bridge>, session: Session) -> StatusCode {
    bridge.logout(&session).await.unwrap();
    StatusCode::NO_CONTENT
}

async fn me(identity: Identity) -> String {
    format!("{} {}", identity.sub, identity.credential.kind.as_str())
}

pub fn app(bridge: Bridge) -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/cart", get(cart))
        .route("/cart/{item}", post(add))
        .route("/login/{user}", post(login))
        .route("/logout", post(logout))
        .route("/account", get(me))
        .route("/api/me", get(me))
        .route("/either/me", get(me))
        .with_state(bridge.clone())
        .layer(BridgeLayer::new(bridge))
}

/// A browser's cookie jar, as far as these tests need one.
#[derive(Debug, Default, Clone)]
pub struct Jar(pub Vec<(String, String)>);

impl Jar {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let c = cookie::Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            self.0.retain(|(n, _)| n != c.name());
            let cleared = c.max_age().is_some_and(|a| a.is_zero()) || c.value().is_empty();
            if !cleared {
                self.0.push((c.name().to_owned(), c.value().to_owned()));
            }
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

/// Send a same-origin request with the jar's cookies (and `bearer`), and
/// keep what the response sets.
pub async fn send(
    app: &Router,
    jar: &mut Jar,
    method: &str,
    uri: &str,
    bearer: Option<&str>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ORIGIN, ORIGIN);
    if let Some(cookies) = jar.header() {
        req = req.header(header::COOKIE, cookies);
    }
    if let Some(token) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response: Response<Body> = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    jar.absorb(response.headers());
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The flows; `$store` is an async block that yields a fresh store.
#[macro_export]
macro_rules! route_tests {
    ($store:expr) => {
        use axum::http::StatusCode;
        use $crate::common::route_tests::{Counting, Jar, app, bridge, send};

        #[tokio::test]
        async fn anonymous_requests_reach_public_routes_and_not_protected_ones() {
            let app = app(bridge($store.await));
            let mut jar = Jar::default();
            assert_eq!(send(&app, &mut jar, "GET", "/", None).await.body, "home");
            let r = send(&app, &mut jar, "GET", "/account", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            assert!(r.body.contains("\"error\""), "{}", r.body);
            let r = send(&app, &mut jar, "GET", "/api/me", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            // Nothing was written, so no session cookie was set.
            assert_eq!(jar.get("sb_session"), None);
        }

        #[tokio::test]
        async fn a_cart_survives_login_and_ends_with_logout() {
            let app = app(bridge($store.await));
            let mut jar = Jar::default();
            assert_eq!(
                send(&app, &mut jar, "POST", "/cart/apple", None).await.body,
                "apple"
            );
            let anonymous = jar
                .get("sb_session")
                .expect("a session for the cart")
                .to_owned();
            assert_eq!(
                send(&app, &mut jar, "POST", "/cart/pear", None).await.body,
                "apple,pear"
            );
            assert_eq!(
                jar.get("sb_session"),
                Some(anonymous.as_str()),
                "same session"
            );

            let r = send(&app, &mut jar, "POST", "/login/alice", None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let logged_in = jar.get("sb_session").unwrap().to_owned();
            assert_ne!(logged_in, anonymous, "login cycles the session id");
            let r = send(&app, &mut jar, "GET", "/account", None).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (StatusCode::OK, "alice-id session")
            );
            assert_eq!(
                send(&app, &mut jar, "GET", "/cart", None).await.body,
                "apple,pear"
            );

            // The pre-login id is dead: no fixation.
            let mut old = Jar::default();
            old.0.push(("sb_session".into(), anonymous));
            assert_eq!(send(&app, &mut old, "GET", "/cart", None).await.body, "");
            assert_eq!(
                send(&app, &mut old, "GET", "/account", None).await.status,
                StatusCode::UNAUTHORIZED
            );

            // An `either` route mints a token cookie; the data stays.
            let r = send(&app, &mut jar, "GET", "/either/me", None).await;
            assert_eq!(r.body, "alice-id session");
            assert!(jar.get("sb_token").is_some());
            assert_eq!(
                send(&app, &mut jar, "GET", "/cart", None).await.body,
                "apple,pear"
            );

            let r = send(&app, &mut jar, "POST", "/logout", None).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
            assert_eq!(jar.get("sb_session"), None, "the cookie is cleared");
            let mut replay = Jar::default();
            replay.0.push(("sb_session".into(), logged_in));
            assert_eq!(
                send(&app, &mut replay, "GET", "/account", None)
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(send(&app, &mut replay, "GET", "/cart", None).await.body, "");
        }

        #[tokio::test]
        async fn tokens_minted_from_a_session_die_with_its_logout() {
            let app = app(bridge($store.await));
            let mut jar = Jar::default();
            send(&app, &mut jar, "POST", "/login/bob", None).await;
            send(&app, &mut jar, "GET", "/either/me", None).await;
            let token = jar.get("sb_token").unwrap().to_owned();
            let mut api = Jar::default();
            let r = send(&app, &mut api, "GET", "/api/me", Some(&token)).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (StatusCode::OK, "bob-id bearer")
            );
            send(&app, &mut jar, "POST", "/logout", None).await;
            let r = send(&app, &mut api, "GET", "/api/me", Some(&token)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }

        #[tokio::test]
        async fn bad_tokens_and_cookies_are_refused_with_a_code() {
            let app = app(bridge($store.await));
            let mut jar = Jar::default();
            for token in ["garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", "a.b.c"] {
                let r = send(&app, &mut jar, "GET", "/api/me", Some(token)).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
                assert!(r.body.contains("invalid_token"), "{token}: {}", r.body);
            }
            jar.0.push(("sb_session".into(), "not-a-session-id".into()));
            let r = send(&app, &mut jar, "GET", "/account", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }

        #[tokio::test]
        async fn cookie_authenticated_state_changes_need_the_same_origin() {
            let app = app(bridge($store.await));
            let mut jar = Jar::default();
            send(&app, &mut jar, "POST", "/login/carol", None).await;
            let cookies = format!("sb_session={}", jar.get("sb_session").unwrap());
            let req = axum::http::Request::builder()
                .method("POST")
                .uri("/logout")
                .header("origin", "https://evil.test")
                .header("cookie", cookies)
                .body(axum::body::Body::empty())
                .unwrap();
            let r = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let r = send(&app, &mut jar, "GET", "/account", None).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "the forged logout changed nothing"
            );
        }

        #[tokio::test]
        async fn log_out_everywhere_ends_the_session() {
            let bridge = bridge($store.await);
            let app = app(bridge.clone());
            let mut jar = Jar::default();
            send(&app, &mut jar, "POST", "/login/dave", None).await;
            assert_eq!(
                send(&app, &mut jar, "GET", "/account", None).await.status,
                StatusCode::OK
            );
            let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 1000;
            bridge.bump_epoch("dave-id", now).await.unwrap();
            assert_eq!(
                send(&app, &mut jar, "GET", "/account", None).await.status,
                StatusCode::UNAUTHORIZED
            );
        }

        #[tokio::test]
        async fn one_store_read_per_request() {
            let store = Counting::new($store.await);
            let app = app(bridge(store.clone()));
            let mut jar = Jar::default();
            send(&app, &mut jar, "POST", "/cart/apple", None).await;
            send(&app, &mut jar, "POST", "/login/erin", None).await;
            for (method, uri) in [("GET", "/account"), ("GET", "/cart"), ("POST", "/cart/fig")] {
                let before = store.loads();
                let r = send(&app, &mut jar, method, uri, None).await;
                assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
                assert_eq!(store.loads() - before, 1, "{method} {uri}: session loads");
            }
            assert_eq!(
                send(&app, &mut jar, "GET", "/cart", None).await.body,
                "apple,fig"
            );
        }
    };
}
