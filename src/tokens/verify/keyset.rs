//! Decoding keys built from a JWK set: each JWK checked once (use, kty,
//! crv, alg must agree), each key pinned to the algorithms it may verify.

use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Every asymmetric algorithm jsonwebtoken verifies: the allowlist for our
/// own keys, whose JWKs always name their one `alg`.
pub(crate) const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One usable key.
pub(crate) struct KeyEntry {
    kid: Option<String>,
    /// Never empty, never HMAC.
    algs: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
}

/// The result of looking a header's `kid` + `alg` up.
pub(crate) enum Lookup<'a> {
    Found(&'a KeyEntry),
    /// A key has this `kid`, but may not verify this `alg`.
    AlgorithmMismatch,
    Missing,
}

/// The usable keys of one issuer, at one point in time.
#[derive(Default)]
pub(crate) struct KeySet {
    entries: Vec<KeyEntry>,
}

impl KeySet {
    /// Keep the keys of `jwks` that pass the checks, restricted to `allow`;
    /// the others are skipped with a debug log naming why (`issuer` names
    /// the source in that log).
    pub(crate) fn build<'a>(
        jwks: impl IntoIterator<Item = &'a Jwk>,
        allow: &[Algorithm],
        issuer: &str,
    ) -> Self {
        let mut entries = Vec::new();
        for jwk in jwks {
            let kid = jwk.common.key_id.clone();
            match usable_algorithms(jwk, allow).and_then(|algs| {
                let key = DecodingKey::from_jwk(jwk).map_err(|_| "key parameters do not decode")?;
                Ok(KeyEntry {
                    kid: kid.clone(),
                    algs,
                    key,
                })
            }) {
                Ok(entry) => entries.push(entry),
                Err(why) => tracing::debug!(issuer, kid = kid.as_deref(), why, "JWK skipped"),
            }
        }
        Self { entries }
    }

    /// Number of usable keys.
    #[cfg_attr(not(feature = "remote-jwks"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The key for a header. Without a `kid`, only an unambiguous key is used.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .entries
                    .iter()
                    .filter(|e| e.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Lookup::Missing;
                }
                named
                    .find(|e| e.algs.contains(&alg))
                    .map_or(Lookup::AlgorithmMismatch, Lookup::Found)
            }
            None => {
                let mut fitting = self.entries.iter().filter(|e| e.algs.contains(&alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Lookup::Found(only),
                    _ => Lookup::Missing,
                }
            }
        }
    }
}

/// The algorithms `jwk` may verify: those its type and curve allow, narrowed
/// to its own `alg` when it names one, and to `allow`.
fn usable_algorithms(jwk: &Jwk, allow: &[Algorithm]) -> Result<Vec<Algorithm>, &'static str> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("not a signature key (use)"),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("not a verification key (key_ops)");
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &ASYMMETRIC[..6],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err("unsupported EC curve"),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err("unsupported OKP curve"),
        },
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never used"),
        _ => return Err("unsupported kty"),
    };
    let algs: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(named) => {
            let alg = Algorithm::from_str(&named.to_string())
                .map_err(|_| "alg is not a signature algorithm")?;
            if !family.contains(&alg) {
                return Err("alg disagrees with kty/crv");
            }
            vec![alg]
        }
        None => family.to_vec(),
    };
    let algs: Vec<Algorithm> = algs.into_iter().filter(|a| allow.contains(a)).collect();
    if algs.is_empty() {
        return Err("no allowed algorithm");
    }
    Ok(algs)
}

/// Keys of one issuer at one point: our ring at a generation, or one
/// successful JWKS fetch (`generation` then counts successful fetches).
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) keys: KeySet,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(extra: serde_json::Value) -> Jwk {
        let mut v = serde_json::json!({"kty": "RSA", "kid": "r", "n": N, "e": "AQAB"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jwk(v)
    }

    #[test]
    fn key_checks() {
        let allow = &[Algorithm::RS256, Algorithm::ES256];
        let ok = |j: Jwk| usable_algorithms(&j, allow);
        assert_eq!(
            ok(rsa(serde_json::json!({"alg": "RS256", "use": "sig"}))).unwrap(),
            [Algorithm::RS256]
        );
        assert_eq!(ok(rsa(serde_json::json!({}))).unwrap(), [Algorithm::RS256]);
        assert!(ok(rsa(serde_json::json!({"use": "enc"}))).is_err());
        assert!(ok(rsa(serde_json::json!({"alg": "RSA-OAEP"}))).is_err());
        assert!(ok(rsa(serde_json::json!({"alg": "HS256"}))).is_err());
        assert!(ok(rsa(serde_json::json!({"alg": "ES256"}))).is_err());
        assert!(
            ok(rsa(serde_json::json!({"alg": "RS512"}))).is_err(),
            "not in the allowlist"
        );
        assert!(ok(rsa(serde_json::json!({"key_ops": ["encrypt"]}))).is_err());
        assert!(ok(jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}))).is_err());
        let p384 =
            serde_json::json!({"kty": "EC", "crv": "P-384", "alg": "ES256", "x": "AA", "y": "AA"});
        assert!(ok(jwk(p384)).is_err(), "curve and alg disagree");
    }

    #[test]
    fn lookup_by_kid_and_alg() {
        let set = KeySet::build(
            [&rsa(serde_json::json!({"alg": "RS256"}))],
            &[Algorithm::RS256],
            "t",
        );
        assert_eq!(set.len(), 1);
        assert!(matches!(
            set.find(Some("r"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("r"), Algorithm::PS256),
            Lookup::AlgorithmMismatch
        ));
        assert!(matches!(
            set.find(Some("../../etc/passwd"), Algorithm::RS256),
            Lookup::Missing
        ));
        assert!(matches!(set.find(None, Algorithm::RS256), Lookup::Found(_)));
    }
}
