//! A custom credential source: the bridge also accepts the login an older
//! app records in its own signed cookie (`legacy_user=<user>.<hex hmac>`),
//! the way an Express or Rails app keeps one, until that app is retired.
//!
//! ```sh
//! cargo run --example custom_credential_source --no-default-features
//! # it prints a valid cookie signed with the key it generated at start
//! curl localhost:3000/me                                 # 401
//! curl -b 'legacy_user=alice.…' localhost:3000/me        # alice via legacy_session
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use axum::{Router, routing::get};
use session_bridge::bridge::{
    AuthRejection, Authenticated, Authn, Bridge, BridgeLayer, CredentialSource, Mode, cookies,
};
use session_bridge::tokens::{config::SigningAlgorithm, keys::KeyRing};
use session_bridge::{Credential, CredentialKind, Identity, Principal};
use session_bridge_store::RevocationStore;
use time::OffsetDateTime;

/// The older app's signed login cookie.
#[derive(Debug)]
struct LegacySignedCookie {
    key: hmac::Key,
    issuer: String,
}

impl LegacySignedCookie {
    fn sign(&self, user: &str) -> String {
        let tag = hmac::sign(&self.key, user.as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{user}.{hex}")
    }
}

#[async_trait]
impl CredentialSource for LegacySignedCookie {
    fn name(&self) -> &'static str {
        "legacy_signed_cookie"
    }

    async fn authenticate(&self, headers: &HeaderMap, revocation: &dyn RevocationStore) -> Authn {
        // No cookie of ours: not mine, let the next source try.
        let Some(value) = cookies::read(headers, "legacy_user") else {
            return Authn::Anonymous;
        };
        let Some((user, hex)) = value.rsplit_once('.') else {
            return Authn::Rejected(AuthRejection::InvalidSession);
        };
        let tag: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        // `verify` compares in constant time.
        if tag.is_none_or(|t| hmac::verify(&self.key, user.as_bytes(), &t).is_err()) {
            return Authn::Rejected(AuthRejection::InvalidSession);
        }
        // "Log out everywhere" through the bridge ends this login too.
        match revocation.epoch(user).await {
            Ok(Some(_)) => return Authn::Rejected(AuthRejection::Revoked),
            Ok(None) => {}
            Err(_) => return Authn::Rejected(AuthRejection::Unavailable),
        }
        let now = OffsetDateTime::now_utc();
        Authn::Authenticated(Authenticated {
            identity: Identity::new(
                Principal::new(user, &self.issuer).with_username(user),
                Credential {
                    kind: CredentialKind::LegacySession,
                    id: format!("legacy-{user}"),
                    expires_at: now + time::Duration::hours(1),
                    absolute_expires_at: None,
                },
            ),
            session: None,
            family: Some(format!("legacy-{user}")),
            session_cookie_present: false,
        })
    }
}

async fn me(identity: Identity) -> String {
    format!(
        "{} via {}\n",
        identity.sub,
        identity.credential.kind.as_str()
    )
}

fn app(source: Arc<LegacySignedCookie>) -> Result<Router, Box<dyn std::error::Error>> {
    let bridge = Bridge::builder()
        .store(session_bridge_store::MemoryStore::default())
        .keys(Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256)?))
        .issuer("http://127.0.0.1:3000")
        .route("/me", Mode::Session)
        .credential_source(source)
        .build()?;
    Ok(Router::new()
        .route("/me", get(me))
        .layer(BridgeLayer::new(bridge)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let source = Arc::new(LegacySignedCookie {
        key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| "no randomness")?,
        issuer: "https://legacy.example.com".to_owned(),
    });
    println!("a valid cookie: legacy_user={}", source.sign("alice"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app(source)?).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn signed_cookies_authenticate_and_forged_ones_do_not() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let source = Arc::new(LegacySignedCookie {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap(),
            issuer: "https://legacy.example.com".to_owned(),
        });
        let good = source.sign("alice");
        let app = app(Arc::clone(&source)).unwrap();
        let get = |cookie: String| {
            Request::get("/me")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap()
        };
        let r = app
            .clone()
            .oneshot(get(format!("legacy_user={good}")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let forged = good.replacen("alice", "admin", 1);
        let r = app
            .clone()
            .oneshot(get(format!("legacy_user={forged}")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = app
            .oneshot(Request::get("/me").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
