//! One signing key: its private half (parsed once, wiped on drop), its
//! public JWK and its RFC 7638 `kid`.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::KeyError;
use crate::tokens::config::SigningAlgorithm;

/// Smallest RSA modulus accepted from a key file, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// PKCS#8 (v1) DER of a private key: wiped on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct PrivateKeyDer(Vec<u8>);

impl PrivateKeyDer {
    pub(crate) fn new(der: Vec<u8>) -> Self {
        Self(der)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The parsed private key. aws-lc frees (and cleanses) the key material
/// when these are dropped.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with everything derived from it computed once:
/// the parsed key, the public JWK, the `kid` and the encoded JWS header.
///
/// `Debug` shows the `kid`, algorithm and creation time, never key material;
/// there is deliberately no `Serialize` and no `Clone`.
pub struct SigningKey {
    kid: String,
    algorithm: SigningAlgorithm,
    created_at: OffsetDateTime,
    public: Jwk,
    /// base64url of `{"alg":…,"kid":…,"typ":"JWT"}`: the same for every token.
    header_b64: String,
    signer: Signer,
    pkcs8: PrivateKeyDer,
}

impl SigningKey {
    /// Generate a new key for `algorithm` (RSA keys are 2048 bits).
    pub(crate) fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let failed = |source| KeyError::Generate { algorithm, source };
        let der = match algorithm {
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
                let der = pair.as_der().map_err(failed)?;
                PrivateKeyDer::new(der.as_ref().to_vec())
            }
            SigningAlgorithm::ES256 => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
                PrivateKeyDer::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                PrivateKeyDer::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
            }
        };
        let created_at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        Self::from_pkcs8(algorithm, der, created_at).map_err(|_| KeyError::Generate {
            algorithm,
            source: Unspecified,
        })
    }

    /// Parse a PKCS#8 private key for `algorithm`. The error says what is
    /// wrong with the key, never shows its bytes.
    pub(crate) fn from_pkcs8(
        algorithm: SigningAlgorithm,
        pkcs8: PrivateKeyDer,
        created_at: OffsetDateTime,
    ) -> Result<Self, &'static str> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| e.description_();
        let der = pkcs8.as_bytes();
        let (signer, params) = match algorithm {
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                if pair.public_modulus_len() < MIN_RSA_MODULUS_BYTES {
                    return Err("RSA key is smaller than 2048 bits");
                }
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let params = AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: URL_SAFE_NO_PAD.encode(&components.n),
                    e: URL_SAFE_NO_PAD.encode(&components.e),
                });
                (Signer::Rsa(pair), params)
            }
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?;
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                let (x, y) = match point {
                    [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
                    _ => return Err("P-256 public key is not an uncompressed point"),
                };
                let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                });
                (Signer::Ec(pair), params)
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?;
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (Signer::Ed(pair), params)
            }
        };
        let kid = thumbprint(&params).ok_or("cannot compute the key's thumbprint")?;
        let public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm(algorithm)),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: params,
        };
        let header = serde_json::json!({ "alg": algorithm.as_str(), "kid": kid, "typ": "JWT" });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self {
            kid,
            algorithm,
            created_at,
            public,
            header_b64,
            signer,
            pkcs8,
        })
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// When the key was generated (whole seconds).
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    pub(crate) fn pkcs8(&self) -> &PrivateKeyDer {
        &self.pkcs8
    }

    /// Sign `payload` (the claims as JSON) into a compact JWS
    /// `header.payload.signature`, header `{"alg","kid","typ":"JWT"}`.
    ///
    /// Signs with the key parsed at load time: `jsonwebtoken::encode` would
    /// re-parse the DER key on every call, which costs as much as an ECDSA
    /// signature itself.
    pub fn sign_jws(&self, payload: &[u8]) -> Result<String, KeyError> {
        let mut jws = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 380);
        jws.push_str(&self.header_b64);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let failed = |source| KeyError::Sign {
            kid: self.kid.clone(),
            source,
        };
        let signature = match &self.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    jws.as_bytes(),
                    &mut sig,
                )
                .map_err(failed)?;
                sig
            }
            Signer::Ec(pair) => pair
                .sign(&SystemRandom::new(), jws.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(jws.as_bytes()).as_ref().to_vec(),
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("private_key", &self.pkcs8)
            .finish_non_exhaustive()
    }
}

fn key_algorithm(algorithm: SigningAlgorithm) -> KeyAlgorithm {
    match algorithm {
        SigningAlgorithm::RS256 => KeyAlgorithm::RS256,
        SigningAlgorithm::ES256 => KeyAlgorithm::ES256,
        SigningAlgorithm::EdDSA => KeyAlgorithm::EdDSA,
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): the hash of a JSON object
/// holding only the required public members of the key, keys sorted, no
/// whitespace. `None` for key types without a defined member set.
pub fn thumbprint(params: &AlgorithmParameters) -> Option<String> {
    // A BTreeMap serializes its keys in code-point order without whitespace:
    // exactly the canonical form RFC 7638 §3.3 asks for (all names are ASCII).
    let members: BTreeMap<&str, &str> = match params {
        AlgorithmParameters::RSA(rsa) => {
            BTreeMap::from([("e", rsa.e.as_str()), ("kty", "RSA"), ("n", rsa.n.as_str())])
        }
        AlgorithmParameters::EllipticCurve(ec) => BTreeMap::from([
            ("crv", curve_name(&ec.curve)?),
            ("kty", "EC"),
            ("x", ec.x.as_str()),
            ("y", ec.y.as_str()),
        ]),
        AlgorithmParameters::OctetKeyPair(okp) => BTreeMap::from([
            ("crv", curve_name(&okp.curve)?),
            ("kty", "OKP"),
            ("x", okp.x.as_str()),
        ]),
        AlgorithmParameters::OctetKey(oct) => {
            BTreeMap::from([("k", oct.value.as_str()), ("kty", "oct")])
        }
        _ => return None,
    };
    let canonical = serde_json::to_vec(&members).ok()?;
    Some(URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &canonical,
    )))
}

fn curve_name(curve: &EllipticCurve) -> Option<&'static str> {
    match curve {
        EllipticCurve::P256 => Some("P-256"),
        EllipticCurve::P384 => Some("P-384"),
        EllipticCurve::P521 => Some("P-521"),
        EllipticCurve::Ed25519 => Some("Ed25519"),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        let params = AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".to_owned(),
            e: "AQAB".to_owned(),
        });
        assert_eq!(
            thumbprint(&params).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_agrees_with_jsonwebtoken_for_every_algorithm() {
        for alg in [SigningAlgorithm::RS256, SigningAlgorithm::ES256] {
            let key = SigningKey::generate(alg).unwrap();
            let theirs = key
                .public_jwk()
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(key.kid(), theirs, "{alg}");
        }
        // jsonwebtoken 12 has no Ed25519 thumbprint; check the member set by hand.
        let key = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
        let AlgorithmParameters::OctetKeyPair(okp) = &key.public_jwk().algorithm else {
            panic!("not OKP")
        };
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        assert_eq!(key.kid(), URL_SAFE_NO_PAD.encode(digest));
    }

    #[test]
    fn signatures_verify_with_jsonwebtoken_and_the_published_jwk() {
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let jws = key
                .sign_jws(br#"{"sub":"alice","exp":4102444800}"#)
                .unwrap();
            let header = jsonwebtoken::decode_header(&jws).unwrap();
            assert_eq!(header.alg, alg.to_jwt());
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            let decoding = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            let mut validation = Validation::new(alg.to_jwt());
            validation.required_spec_claims.clear();
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&jws, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "alice");
        }
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_kid() {
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let der = PrivateKeyDer::new(key.pkcs8().as_bytes().to_vec());
            let again = SigningKey::from_pkcs8(alg, der, key.created_at()).unwrap();
            assert_eq!(again.kid(), key.kid());
        }
    }

    #[test]
    fn wrong_algorithm_for_the_key_is_rejected() {
        let key = SigningKey::generate(SigningAlgorithm::ES256).unwrap();
        let der = PrivateKeyDer::new(key.pkcs8().as_bytes().to_vec());
        assert!(SigningKey::from_pkcs8(SigningAlgorithm::RS256, der, key.created_at()).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("[redacted]"), "{printed}");
        assert!(printed.contains(key.kid()));
        let der_b64 = base64::engine::general_purpose::STANDARD.encode(key.pkcs8().as_bytes());
        assert!(!printed.contains(&der_b64[..16]));
        assert_eq!(format!("{:?}", key.pkcs8()), "[redacted]");
    }
}
