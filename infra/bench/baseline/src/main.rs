//! The checks an application would write by hand, served the way the
//! bridge's `/auth/verify` is, so `infra/bench/load.sh` can report the
//! bridge's cost as a ratio to them in the same run.
//!
//! ```text
//! session-bridge-baseline token ADDR JWKS_FILE ISSUER   # axum + jsonwebtoken: RS256/ES256, exp + iss + sub required
//! session-bridge-baseline redis ADDR REDIS_URL          # axum + one Redis GET of the `sid` cookie
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use fred::prelude::{ClientLike as _, KeysInterface as _, Pool};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

struct Token {
    keys: Vec<(String, DecodingKey, Validation)>,
}

async fn check_token(State(t): State<Arc<Token>>, headers: HeaderMap) -> StatusCode {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(head) = jsonwebtoken::decode_header(token) else {
        return StatusCode::UNAUTHORIZED;
    };
    let Some((_, key, validation)) = t
        .keys
        .iter()
        .find(|(kid, _, _)| Some(kid) == head.kid.as_ref())
    else {
        return StatusCode::UNAUTHORIZED;
    };
    match jsonwebtoken::decode::<serde_json::Value>(token, key, validation) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

async fn check_session(State(pool): State<Pool>, headers: HeaderMap) -> StatusCode {
    let sid = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split("; ").find_map(|kv| kv.strip_prefix("sid=")));
    let Some(sid) = sid else {
        return StatusCode::UNAUTHORIZED;
    };
    match pool.get::<Option<String>, _>(format!("sess:{sid}")).await {
        Ok(Some(_)) => StatusCode::OK,
        Ok(None) => StatusCode::UNAUTHORIZED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (app, addr) = match args.get(1).map(String::as_str) {
        Some("token") if args.len() == 5 => {
            let jwks: JwkSet = serde_json::from_slice(&std::fs::read(&args[3])?)?;
            let mut keys = Vec::new();
            for jwk in &jwks.keys {
                let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else {
                    continue;
                };
                let alg: jsonwebtoken::Algorithm = alg.to_string().parse()?;
                let mut validation = Validation::new(alg);
                validation.set_required_spec_claims(&["exp", "iss", "sub"]);
                validation.set_issuer(&[&args[4]]);
                validation.validate_aud = false;
                keys.push((kid.clone(), DecodingKey::from_jwk(jwk)?, validation));
            }
            let app = Router::new()
                .fallback(check_token)
                .with_state(Arc::new(Token { keys }));
            (app, args[2].clone())
        }
        Some("redis") if args.len() == 4 => {
            let config = fred::types::config::Config::from_url(&args[3])?;
            let pool = Pool::new(config, None, None, None, 4)?;
            pool.init().await?;
            (
                Router::new().fallback(check_session).with_state(pool),
                args[2].clone(),
            )
        }
        _ => {
            return Err(
                "usage: session-bridge-baseline token ADDR JWKS_FILE ISSUER | redis ADDR REDIS_URL"
                    .into(),
            );
        }
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
