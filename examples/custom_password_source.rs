//! A custom `PasswordSource` for the service's `POST /login`: here a fixed
//! table with argon2 hashes, the shape of a source that checks passwords
//! against the legacy app's own user table. The built-in users file and
//! Cognito are the two sources the service ships.
//!
//! ```sh
//! cargo run --example custom_password_source
//! curl -i -d 'username=alice&password=correct horse' localhost:3000/login
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use async_trait::async_trait;
use session_bridge::Principal;
use session_bridge::config::{Config, Overrides};
use session_bridge::login::{Attempt, LoginError, Password, PasswordSource};
use session_bridge::service::{self, AppState};
use session_bridge::stores::Stores;
use session_bridge::tokens::keys::KeyRing;

#[derive(Debug)]
struct LegacyUsers {
    issuer: String,
    /// (username, sub, argon2 hash), as the legacy app's table holds them.
    users: Vec<(String, String, String)>,
    /// Checked when the user is unknown, so both cases cost the same.
    dummy: String,
}

#[async_trait]
impl PasswordSource for LegacyUsers {
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
        _attempt: Attempt,
    ) -> Result<Principal, LoginError> {
        let found = self.users.iter().find(|(name, _, _)| name == username);
        let hash = found.map_or(self.dummy.as_str(), |(_, _, hash)| hash.as_str());
        let parsed =
            PasswordHash::new(hash).map_err(|e| LoginError::Unavailable(e.to_string().into()))?;
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        match found {
            Some((name, sub, _)) if ok => {
                Ok(Principal::new(sub.clone(), self.issuer.clone()).with_username(name.clone()))
            }
            _ => Err(LoginError::InvalidCredentials),
        }
    }
}

fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let overrides = Overrides {
        listen: Some(addr),
        data_dir: Some(".data-example".into()),
        public_url: None,
    };
    let config = Config::load(None, &overrides)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let stores = Stores::open(&config).await?;
    let (keys, _) = KeyRing::load_or_generate(&config.tokens, &config.data_dir)?;
    let issuer = format!("http://{addr}");
    let (mut state, _) = AppState::build(&config, stores, Arc::new(keys), issuer.clone()).await?;
    state.passwords = Some(Arc::new(LegacyUsers {
        issuer,
        users: vec![("alice".into(), "alice-id".into(), hash("correct horse")?)],
        dummy: hash("not anyone's password")?,
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("POST http://{addr}/login with username=alice&password=correct horse");
    axum::serve(
        listener,
        service::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
