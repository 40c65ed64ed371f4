//! The first, pre-signature look at a token: size, segments, and a JOSE
//! header we parse ourselves so that `alg` is matched exactly against the
//! allowlist before any key is chosen.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::{VerifyError, VerifyErrorKind};

/// Longest encoded header accepted: room for a certificate chain in `x5c`
/// (which we ignore) without letting the header dominate the size budget.
const MAX_HEADER_CHARS: usize = 4096;
/// Longest `kid` accepted: real ones are thumbprints or UUIDs.
pub(crate) const MAX_KID_BYTES: usize = 256;

/// A token split into what the verifier needs before choosing a key.
#[derive(Debug)]
pub(crate) struct ParsedToken {
    /// The header's `alg`, one of the asymmetric algorithms jsonwebtoken knows.
    pub(crate) alg: Algorithm,
    /// The header's `kid`, bounded by [`MAX_KID_BYTES`].
    pub(crate) kid: Option<String>,
    /// `typ` is `at+jwt` (RFC 9068 access token).
    pub(crate) at_jwt: bool,
    /// The decoded (not yet trusted) payload.
    pub(crate) payload: Vec<u8>,
}

/// The header members we act on. `jku`, `x5u`, `jwk` and `x5c` are
/// deliberately not read: keys only ever come from the issuer's configured
/// JWKS, so those members can neither be fetched nor trusted.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    enc: Option<IgnoredAny>,
    #[serde(default)]
    zip: Option<IgnoredAny>,
    #[serde(default)]
    b64: Option<bool>,
}

/// Split and pre-check `token`; the signature itself is checked later.
pub(crate) fn parse(token: &str, max_token_bytes: usize) -> Result<ParsedToken, VerifyError> {
    // Before anything else, so that no work scales with an attacker's input.
    if token.len() > max_token_bytes {
        return Err(VerifyError::new(
            VerifyErrorKind::TooLarge,
            "token exceeds the size limit",
        ));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::malformed(
            "a JWT has three dot-separated segments",
        ));
    };
    match parts.count() {
        0 => {}
        2 => {
            return Err(VerifyError::malformed(
                "encrypted tokens (JWE) are not accepted",
            ));
        }
        _ => {
            return Err(VerifyError::malformed(
                "a JWT has three dot-separated segments",
            ));
        }
    }
    if header.len() > MAX_HEADER_CHARS {
        return Err(VerifyError::malformed("header too large"));
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::malformed("header is not base64url"))?;
    // A derived struct would also accept a JSON array, matched by position.
    if !is_json_object(&header_json) {
        return Err(VerifyError::malformed("header is not a JSON object"));
    }
    let raw: RawHeader<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| VerifyError::malformed("header is not a JSON object of the expected shape"))?;

    let alg = check_alg(raw.alg.as_deref())?;
    if raw.crit.is_some() {
        return Err(VerifyError::malformed(
            "critical header extensions are not supported",
        ));
    }
    if raw.enc.is_some() || raw.zip.is_some() {
        return Err(VerifyError::malformed(
            "encrypted tokens (JWE) are not accepted",
        ));
    }
    if raw.b64 == Some(false) {
        return Err(VerifyError::malformed(
            "unencoded payloads are not supported",
        ));
    }
    let kid = match raw.kid {
        Some(kid) if kid.len() > MAX_KID_BYTES => {
            return Err(VerifyError::malformed("kid too long"));
        }
        kid => kid.map(Cow::into_owned),
    };
    let at_jwt = raw.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });

    // After the alg check, so that an `alg: none` token (empty signature)
    // is reported as what it is.
    if signature.is_empty() {
        return Err(VerifyError::new(
            VerifyErrorKind::BadSignature,
            "signature is empty",
        ));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| VerifyError::malformed("payload is not base64url"))?;
    Ok(ParsedToken {
        alg,
        kid,
        at_jwt,
        payload,
    })
}

/// Whether `json` starts like an object (serde_json checks the rest).
pub(crate) fn is_json_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// Only the exact, case-sensitive names of asymmetric algorithms pass:
/// `none` in any casing and every HMAC algorithm are refused here, before a
/// key is even looked up (a public key must never serve as an HMAC secret).
fn check_alg(alg: Option<&str>) -> Result<Algorithm, VerifyError> {
    let Some(name) = alg else {
        return Err(VerifyError::malformed("header has no alg"));
    };
    if name.eq_ignore_ascii_case("none") {
        return Err(VerifyError::new(
            VerifyErrorKind::AlgorithmNotAllowed,
            "unsigned tokens are never accepted",
        ));
    }
    match Algorithm::from_str(name) {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => {
            Err(VerifyError::new(
                VerifyErrorKind::AlgorithmNotAllowed,
                "algorithm not allowed",
            ))
        }
        Ok(alg) => Ok(alg),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(r#"{"sub":"x"}"#))
    }

    fn kind(token: &str) -> VerifyErrorKind {
        match parse(token, 8192) {
            Ok(p) => panic!("accepted {token}: {p:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn accepts_a_plain_rs256_header() {
        let p = parse(&token(r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#), 8192).unwrap();
        assert_eq!(p.alg, Algorithm::RS256);
        assert_eq!(p.kid.as_deref(), Some("k1"));
        assert!(p.at_jwt);
        assert_eq!(p.payload, br#"{"sub":"x"}"#);
    }

    #[test]
    fn none_and_hmac_are_refused_in_any_casing() {
        for alg in [
            "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "rs256", "ES512", "",
        ] {
            assert_eq!(
                kind(&token(&format!(r#"{{"alg":"{alg}"}}"#))),
                VerifyErrorKind::AlgorithmNotAllowed,
                "{alg}"
            );
        }
    }

    #[test]
    fn header_shape_errors_are_malformed() {
        for header in [
            r#"{"kid":"k"}"#,
            r#"{"alg":256}"#,
            r#"["RS256"]"#,
            "not json",
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","crit":[]}"#,
            r#"{"alg":"RS256","enc":"A256GCM"}"#,
            r#"{"alg":"RS256","b64":false}"#,
            r#"{"alg":"RS256","alg":"RS256"}"#,
            r#"{"alg":"RS256","kid":7}"#,
        ] {
            assert_eq!(kind(&token(header)), VerifyErrorKind::Malformed, "{header}");
        }
        let long_kid = format!(
            r#"{{"alg":"RS256","kid":"{}"}}"#,
            "k".repeat(MAX_KID_BYTES + 1)
        );
        assert_eq!(kind(&token(&long_kid)), VerifyErrorKind::Malformed);
    }

    #[test]
    fn key_url_headers_are_ignored() {
        let p = parse(
            &token(r#"{"alg":"RS256","kid":"k","jku":"http://127.0.0.1:1/jwks","x5u":"http://127.0.0.1:1/c","jwk":{"kty":"oct","k":"AA"},"x5c":["AA"]}"#),
            8192,
        )
        .unwrap();
        assert_eq!(p.kid.as_deref(), Some("k"));
    }

    #[test]
    fn segments_and_size() {
        let h = b64(r#"{"alg":"RS256"}"#);
        assert_eq!(kind(""), VerifyErrorKind::Malformed);
        assert_eq!(kind(&h), VerifyErrorKind::Malformed);
        assert_eq!(kind(&format!("{h}.e30")), VerifyErrorKind::Malformed);
        assert_eq!(kind(&format!("{h}.e30.c2ln.x")), VerifyErrorKind::Malformed);
        assert_eq!(kind(&format!("{h}.a.b.c.d")), VerifyErrorKind::Malformed);
        assert_eq!(kind(&format!("{h}.e30.")), VerifyErrorKind::BadSignature);
        assert_eq!(kind(&format!("{h}.e3=0.c2ln")), VerifyErrorKind::Malformed);
        assert_eq!(kind(&format!("{h}!.e30.c2ln")), VerifyErrorKind::Malformed);
        assert_eq!(
            parse(&"a".repeat(8193), 8192).unwrap_err().kind(),
            VerifyErrorKind::TooLarge
        );
        let big_header = format!("{}.e30.c2ln", "A".repeat(MAX_HEADER_CHARS + 4));
        assert_eq!(kind(&big_header), VerifyErrorKind::Malformed);
    }

    #[test]
    fn deep_nesting_in_header_is_an_error_not_a_crash() {
        let deep = format!(r#"{{"alg":"RS256","x":{}}}"#, "[".repeat(3000));
        assert_eq!(
            parse(&token(&deep), 1 << 20).unwrap_err().kind(),
            VerifyErrorKind::Malformed
        );
    }
}
