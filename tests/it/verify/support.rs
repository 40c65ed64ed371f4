//! Keys and token builders for verification tests: keys generated with
//! aws-lc-rs, tokens assembled by hand so any header can be forged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use session_bridge::tokens::verify::{
    OwnIssuer, StaticKeys, Verifier, VerifyConfig, VerifyErrorKind,
};

pub const ISSUER: &str = "https://bridge.test";
pub const CLIENT: &str = "bridge-client";

/// A signing key with its public JWK.
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub enc: EncodingKey,
    pub jwk: Jwk,
    /// The public key, SubjectPublicKeyInfo DER.
    pub public_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestKey {
    pub fn new(alg: Algorithm, kid: &str) -> Self {
        let (enc, public_der) = match alg {
            Algorithm::RS256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let pkcs8: Pkcs8V1Der<'_> = kp.as_der().unwrap();
                let public: PublicKeyX509Der<'_> = kp.public_key().as_der().unwrap();
                let enc = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
                    .unwrap();
                (enc, public.as_ref().to_vec())
            }
            Algorithm::ES256 => {
                let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
                let pkcs8 = kp.to_pkcs8v1().unwrap();
                let public: PublicKeyX509Der<'_> = kp.public_key().as_der().unwrap();
                (
                    EncodingKey::from_ec_der(pkcs8.as_ref()),
                    public.as_ref().to_vec(),
                )
            }
            Algorithm::EdDSA => {
                let kp = Ed25519KeyPair::generate().unwrap();
                let pkcs8 = kp.to_pkcs8v1().unwrap();
                let public: PublicKeyX509Der<'_> = kp.public_key().as_der().unwrap();
                (
                    EncodingKey::from_ed_der(pkcs8.as_ref()),
                    public.as_ref().to_vec(),
                )
            }
            other => panic!("no test key for {other:?}"),
        };
        let mut jwk = Jwk::from_encoding_key(&enc, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            alg,
            kid: kid.to_owned(),
            enc,
            jwk,
            public_der,
        }
    }

    /// The public key as PEM (what an attacker would find published).
    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.public_der)
    }

    /// A token with this key's `alg` and `kid` plus `extra` header members.
    pub fn sign(&self, extra_header: Value, claims: &Value) -> String {
        let mut header = json!({"alg": alg_name(self.alg), "typ": "JWT", "kid": self.kid});
        merge(&mut header, extra_header);
        sign_raw(&header, claims, &self.enc, self.alg)
    }
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::PS256 => "PS256",
        Algorithm::RS384 => "RS384",
        other => panic!("{other:?}"),
    }
}

pub fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        for (k, v) in extra {
            if v.is_null() {
                into.remove(&k);
            } else {
                into.insert(k, v);
            }
        }
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` signed with `key` as `alg`, whatever the header says.
pub fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{sig}")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Cognito-shaped access-token claims for our own issuer.
pub fn access_claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "token_use": "access", "client_id": CLIENT,
        "iat": now(), "auth_time": now(), "exp": now() + 600, "jti": "j-1", "origin_jti": "fam-1",
        "username": "alice", "cognito:groups": ["staff"], "scope": "openid profile",
    })
}

/// Cognito-shaped ID-token claims for our own issuer.
pub fn id_claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "token_use": "id", "aud": CLIENT,
        "iat": now(), "auth_time": now(), "exp": now() + 600, "jti": "j-2", "origin_jti": "fam-1",
        "cognito:username": "alice", "cognito:groups": ["staff"], "email": "alice@example.test",
    })
}

pub fn with(mut claims: Value, extra: Value) -> Value {
    merge(&mut claims, extra);
    claims
}

/// Our three keys (RS256 `rsa`, ES256 `ec`, EdDSA `ed`) and a verifier
/// trusting them as our own issuer.
pub struct OwnSetup {
    pub rsa: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
    pub verifier: Verifier,
}

impl OwnSetup {
    pub fn new() -> Self {
        Self::with_config(VerifyConfig::default())
    }

    pub fn with_config(cfg: VerifyConfig) -> Self {
        let (rsa, ec, ed) = (
            TestKey::new(Algorithm::RS256, "rsa"),
            TestKey::new(Algorithm::ES256, "ec"),
            TestKey::new(Algorithm::EdDSA, "ed"),
        );
        let jwks = JwkSet {
            keys: vec![rsa.jwk.clone(), ec.jwk.clone(), ed.jwk.clone()],
        };
        let verifier = own_verifier(&cfg, jwks);
        Self {
            rsa,
            ec,
            ed,
            verifier,
        }
    }

    pub fn keys(&self) -> [&TestKey; 3] {
        [&self.rsa, &self.ec, &self.ed]
    }
}

pub fn own_verifier(cfg: &VerifyConfig, jwks: JwkSet) -> Verifier {
    let own = OwnIssuer {
        issuer: ISSUER.to_owned(),
        client_id: CLIENT.to_owned(),
        keys: Arc::new(StaticKeys::new(jwks)),
    };
    Verifier::new(cfg, &[], Some(own)).unwrap()
}

/// The kind a token is rejected with (panics when it is accepted).
pub async fn rejected(verifier: &Verifier, token: &str) -> VerifyErrorKind {
    match verifier.verify(token).await {
        Ok(t) => panic!("token accepted: {:?}", t.claims),
        Err(e) => e.kind(),
    }
}

/// A loopback HTTP listener that counts connections (and answers 404): the
/// target of `jku` / `x5u` headers, which must never be fetched.
pub struct Tripwire {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Tripwire {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                use tokio::io::AsyncWriteExt as _;
                let _ = sock
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        Self { url, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
