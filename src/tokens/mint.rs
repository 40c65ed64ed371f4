//! Minting access and id tokens with Cognito's claim sets, so a verifier set
//! up for a Cognito user pool (issuer, JWKS URL, client id, token use)
//! accepts them unchanged.
//!
//! ```no_run
//! # fn demo() -> Result<(), session_bridge::tokens::keys::KeyError> {
//! use std::sync::Arc;
//! use session_bridge::tokens::config::TokensConfig;
//! use session_bridge::tokens::keys::KeyRing;
//! use session_bridge::tokens::mint::{Minter, Subject};
//!
//! let cfg = TokensConfig::default();
//! let (ring, _) = KeyRing::load_or_generate(&cfg, ".data".as_ref())?;
//! let minter = Minter::new(Arc::new(ring), "https://auth.example.com".to_owned(), &cfg);
//! let alice = Subject::new("7d9f…-uuid").with_username("alice").with_groups(["admin"]);
//! let access = minter.access_token(&alice, "session-family-id")?;
//! println!("{} expires at {}", access.jti, access.expires_at);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::tokens::config::TokensConfig;
use crate::tokens::keys::{KeyError, KeyRing};
pub use crate::tokens::verify::TokenUse;

/// Who a token is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `sub`: the stable principal id.
    pub sub: String,
    /// `username` (access) / `cognito:username` (id).
    pub username: String,
    /// `cognito:groups` (left out of the token when empty, as Cognito does).
    pub groups: Vec<String>,
    /// When the user authenticated (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// `email` (id tokens only).
    pub email: Option<String>,
    /// `name` (id tokens only).
    pub name: Option<String>,
}

/// The token form of the crate's one user type: the login name falls back
/// to `sub` (Cognito always names a username).
impl From<&crate::identity::Principal> for Subject {
    fn from(user: &crate::identity::Principal) -> Self {
        Self {
            sub: user.sub.clone(),
            username: user.username.clone().unwrap_or_else(|| user.sub.clone()),
            groups: user.groups.clone(),
            auth_time: user.auth_time,
            email: user.email.clone(),
            name: None,
        }
    }
}

impl Subject {
    /// A subject whose username is `sub`, with no groups, authenticated now.
    pub fn new(sub: impl Into<String>) -> Self {
        let sub = sub.into();
        Self {
            username: sub.clone(),
            sub,
            groups: Vec::new(),
            auth_time: OffsetDateTime::now_utc(),
            email: None,
            name: None,
        }
    }

    /// Set the username.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// Set the groups.
    #[must_use]
    pub fn with_groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Set when the user authenticated.
    #[must_use]
    pub fn with_auth_time(mut self, auth_time: OffsetDateTime) -> Self {
        self.auth_time = auth_time;
        self
    }

    /// Set the email address (id tokens).
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Set the display name (id tokens).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The claim set of a token we mint, in Cognito's spelling. Access tokens
/// carry `client_id`, `scope` and `username` and no `aud`; id tokens carry
/// `aud`, `cognito:username` and the profile claims.
///
/// (The verifier has its own typed view of any verified token, Cognito's
/// or an OIDC issuer's; this is exactly what goes into ours.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedClaims {
    /// Subject.
    pub sub: String,
    /// Issuer: the service's public URL.
    pub iss: String,
    /// Audience: our client id (id tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Our client id (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `access` or `id`.
    #[serde(deserialize_with = "token_use")]
    pub token_use: TokenUse,
    /// Space-separated scopes (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the user authenticated, seconds since the epoch.
    pub auth_time: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// This token's id.
    pub jti: String,
    /// The token family: the session's family id.
    pub origin_jti: String,
    /// Username (access tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Username (id tokens only).
    #[serde(
        default,
        rename = "cognito:username",
        skip_serializing_if = "Option::is_none"
    )]
    pub cognito_username: Option<String>,
    /// Groups; absent when empty, as in Cognito.
    #[serde(
        default,
        rename = "cognito:groups",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<String>,
    /// Email (id tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name (id tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn token_use<'de, D: Deserializer<'de>>(d: D) -> Result<TokenUse, D::Error> {
    match String::deserialize(d)?.as_str() {
        "access" => Ok(TokenUse::Access),
        "id" => Ok(TokenUse::Id),
        _ => Err(serde::de::Error::custom(
            "token_use must be `access` or `id`",
        )),
    }
}

/// A signed token and the facts a caller stores or sets a cookie from.
#[derive(Clone)]
pub struct MintedToken {
    /// The compact JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: OffsetDateTime,
    /// Access or id token.
    pub token_use: TokenUse,
}

impl fmt::Debug for MintedToken {
    /// A token is a bearer credential: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .field("token_use", &self.token_use)
            .finish()
    }
}

/// Mints our tokens with the key ring's `current` key.
#[derive(Debug, Clone)]
pub struct Minter {
    keys: Arc<KeyRing>,
    issuer: Arc<str>,
    client_id: Arc<str>,
    scope: Arc<str>,
    access_ttl: Duration,
    id_ttl: Duration,
}

impl Minter {
    /// A minter for tokens with `iss = issuer` (the service's public URL,
    /// exactly as verifiers will be configured with it) and the client id,
    /// scope and lifetimes of `cfg`.
    pub fn new(keys: Arc<KeyRing>, issuer: String, cfg: &TokensConfig) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            client_id: cfg.client_id.as_str().into(),
            scope: cfg.scope.as_str().into(),
            access_ttl: cfg.access_ttl,
            id_ttl: cfg.id_ttl,
        }
    }

    /// The `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `client_id` / `aud` of minted tokens.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The key ring tokens are signed with.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Lifetime of tokens of `token_use`.
    pub fn ttl(&self, token_use: TokenUse) -> Duration {
        match token_use {
            TokenUse::Access => self.access_ttl,
            TokenUse::Id => self.id_ttl,
        }
    }

    /// Mint an access token for `subject` in token family `origin_jti`.
    pub fn access_token(
        &self,
        subject: &Subject,
        origin_jti: &str,
    ) -> Result<MintedToken, KeyError> {
        self.mint(TokenUse::Access, subject, origin_jti)
    }

    /// Mint an id token for `subject` in token family `origin_jti`.
    pub fn id_token(&self, subject: &Subject, origin_jti: &str) -> Result<MintedToken, KeyError> {
        self.mint(TokenUse::Id, subject, origin_jti)
    }

    /// Mint a token of `token_use`, issued now.
    pub fn mint(
        &self,
        token_use: TokenUse,
        subject: &Subject,
        origin_jti: &str,
    ) -> Result<MintedToken, KeyError> {
        self.mint_at(token_use, subject, origin_jti, OffsetDateTime::now_utc())
    }

    /// Mint a token as if issued at `now` (tests of expiry, clock skew).
    pub fn mint_at(
        &self,
        token_use: TokenUse,
        subject: &Subject,
        origin_jti: &str,
        now: OffsetDateTime,
    ) -> Result<MintedToken, KeyError> {
        if subject.sub.trim().is_empty() {
            return Err(KeyError::EmptySubject);
        }
        let claims = self.claims(token_use, subject, origin_jti, now);
        let payload = serde_json::to_vec(&claims).map_err(KeyError::Encode)?;
        let token = self.keys.signing_key().sign_jws(&payload)?;
        Ok(MintedToken {
            token,
            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now),
            jti: claims.jti,
            token_use,
        })
    }

    fn claims(
        &self,
        token_use: TokenUse,
        subject: &Subject,
        origin_jti: &str,
        now: OffsetDateTime,
    ) -> IssuedClaims {
        let iat = now.unix_timestamp();
        let ttl = i64::try_from(self.ttl(token_use).as_secs()).unwrap_or(i64::MAX);
        let access = token_use == TokenUse::Access;
        let id = !access;
        IssuedClaims {
            sub: subject.sub.clone(),
            iss: self.issuer.to_string(),
            aud: id.then(|| self.client_id.to_string()),
            client_id: access.then(|| self.client_id.to_string()),
            token_use,
            scope: access.then(|| self.scope.to_string()),
            auth_time: subject.auth_time.unix_timestamp(),
            iat,
            exp: iat.saturating_add(ttl),
            jti: new_jti(),
            origin_jti: origin_jti.to_owned(),
            username: access.then(|| subject.username.clone()),
            cognito_username: id.then(|| subject.username.clone()),
            groups: subject.groups.clone(),
            email: subject.email.clone().filter(|_| id),
            name: subject.name.clone().filter(|_| id),
        }
    }
}

/// A random UUID v4, the shape of Cognito's `jti`: 122 random bits.
pub fn new_jti() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeSet;

    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    use super::*;
    use crate::tokens::config::SigningAlgorithm;

    fn minter(alg: SigningAlgorithm) -> (tempfile::TempDir, Minter) {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _) = KeyRing::open(dir.path().join("keys.json"), alg, true).unwrap();
        let minter = Minter::new(
            Arc::new(ring),
            "https://bridge.test".to_owned(),
            &TokensConfig::default(),
        );
        (dir, minter)
    }

    fn alice() -> Subject {
        Subject::new("sub-1")
            .with_username("alice")
            .with_groups(["admin", "staff"])
            .with_email("alice@example.com")
            .with_name("Alice")
    }

    #[test]
    fn a_blank_subject_is_refused() {
        let (_dir, minter) = minter(SigningAlgorithm::ES256);
        for blank in ["", "  "] {
            let err = minter
                .access_token(&Subject::new(blank), "family")
                .unwrap_err();
            assert!(matches!(err, KeyError::EmptySubject), "{err}");
            assert!(minter.id_token(&Subject::new(blank), "family").is_err());
        }
    }

    fn payload(token: &str) -> Value {
        let (_, rest) = token.split_once('.').unwrap();
        let (payload, _) = rest.split_once('.').unwrap();
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    }

    fn claim_names(claims: &Value) -> BTreeSet<&str> {
        claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn access_token_has_cognitos_access_claims_and_no_aud() {
        let (_dir, minter) = minter(SigningAlgorithm::ES256);
        let minted = minter.access_token(&alice(), "family-1").unwrap();
        let claims = payload(&minted.token);
        let expected = [
            "sub",
            "iss",
            "client_id",
            "token_use",
            "scope",
            "auth_time",
            "iat",
            "exp",
            "jti",
            "origin_jti",
            "username",
            "cognito:groups",
        ];
        assert_eq!(claim_names(&claims), expected.into_iter().collect());
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["client_id"], "session-bridge");
        assert_eq!(claims["scope"], "openid profile");
        assert_eq!(claims["username"], "alice");
        assert_eq!(claims["origin_jti"], "family-1");
        assert_eq!(
            claims["cognito:groups"],
            serde_json::json!(["admin", "staff"])
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            15 * 60
        );
        assert_eq!(claims["jti"], minted.jti);
        assert_eq!(
            minted.expires_at.unix_timestamp(),
            claims["exp"].as_i64().unwrap()
        );
        assert_eq!(minted.token_use, TokenUse::Access);
    }

    #[test]
    fn id_token_has_cognitos_id_claims() {
        let (_dir, minter) = minter(SigningAlgorithm::EdDSA);
        let minted = minter.id_token(&alice(), "family-1").unwrap();
        let claims = payload(&minted.token);
        let expected = [
            "sub",
            "iss",
            "aud",
            "token_use",
            "auth_time",
            "iat",
            "exp",
            "jti",
            "origin_jti",
            "cognito:username",
            "cognito:groups",
            "email",
            "name",
        ];
        assert_eq!(claim_names(&claims), expected.into_iter().collect());
        assert_eq!(claims["aud"], "session-bridge");
        assert_eq!(claims["token_use"], "id");
        assert_eq!(claims["cognito:username"], "alice");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
    }

    #[test]
    fn empty_groups_are_left_out_like_cognito() {
        let (_dir, minter) = minter(SigningAlgorithm::EdDSA);
        let claims = payload(
            &minter
                .access_token(&Subject::new("bob"), "f")
                .unwrap()
                .token,
        );
        assert!(claims.get("cognito:groups").is_none());
        assert_eq!(claims["username"], "bob");
    }

    #[test]
    fn tokens_verify_with_jsonwebtoken_against_the_jwks() {
        for alg in SigningAlgorithm::ALL {
            let (_dir, minter) = minter(alg);
            let minted = minter.id_token(&alice(), "family").unwrap();
            let header = jsonwebtoken::decode_header(&minted.token).unwrap();
            let jwks = minter.keys().jwks();
            let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
            let mut validation = Validation::new(alg.to_jwt());
            validation.set_issuer(&["https://bridge.test"]);
            validation.set_audience(&["session-bridge"]);
            validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            let data = jsonwebtoken::decode::<IssuedClaims>(
                &minted.token,
                &DecodingKey::from_jwk(jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(data.claims.token_use, TokenUse::Id);
            assert_eq!(data.claims.cognito_username.as_deref(), Some("alice"));
        }
    }

    #[test]
    fn every_token_gets_its_own_uuid_jti() {
        let (_dir, minter) = minter(SigningAlgorithm::EdDSA);
        let a = minter.access_token(&alice(), "f").unwrap();
        let b = minter.access_token(&alice(), "f").unwrap();
        assert_ne!(a.jti, b.jti);
        let jti = new_jti();
        assert_eq!(jti.len(), 36);
        assert_eq!(&jti[14..15], "4");
        assert!(matches!(&jti[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn mint_at_sets_the_times() {
        let (_dir, minter) = minter(SigningAlgorithm::EdDSA);
        let then = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let subject = alice().with_auth_time(then);
        let minted = minter
            .mint_at(TokenUse::Access, &subject, "f", then)
            .unwrap();
        let claims = payload(&minted.token);
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["auth_time"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_900);
    }

    #[test]
    fn debug_of_a_minted_token_hides_the_token() {
        let (_dir, minter) = minter(SigningAlgorithm::EdDSA);
        let minted = minter.access_token(&alice(), "f").unwrap();
        let printed = format!("{minted:?}");
        assert!(!printed.contains(&minted.token[..20]), "{printed}");
        assert!(printed.contains(&minted.jti));
    }
}
