//! Why a token was rejected: one error type with a stable, machine-readable
//! kind, shaped like `jsonwebtoken::errors::Error`.

use std::fmt;

use axum::http::StatusCode;

/// The stable reason a token was rejected. New kinds may be added; match
/// with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// The signature does not match the key named by the header.
    BadSignature,
    /// No key of the issuer has the header's `kid`.
    UnknownKey,
    /// The token's `iss` is not a trusted issuer.
    UnknownIssuer,
    /// The token's `iss` does not match the issuer it was checked against.
    WrongIssuer,
    /// `client_id` (access token) or `aud` (ID token) is not an accepted app client.
    WrongAudience,
    /// The token is an access token where an ID token is expected, or back.
    WrongTokenUse,
    /// Not a well-formed signed JWT (segments, base64url, JSON, claim types,
    /// critical header extensions, encrypted tokens).
    Malformed,
    /// The header's `alg` is not allowed for the issuer or the key.
    AlgorithmNotAllowed,
    /// The token is larger than `tokens.verify.max_token_bytes`.
    TooLarge,
    /// A required claim (`iss`, `sub`, `exp`, `token_use`, …) is absent.
    MissingClaim,
    /// A group required by the issuer's configuration is absent.
    MissingGroup,
    /// A scope required by the issuer's configuration is absent.
    InsufficientScope,
    /// The issuer's keys could not be fetched yet: retry later.
    IssuerUnavailable,
}

impl VerifyErrorKind {
    /// The snake_case code used in logs, metrics, HTTP bodies and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::UnknownIssuer => "unknown_issuer",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongTokenUse => "wrong_token_use",
            Self::Malformed => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::TooLarge => "too_large",
            Self::MissingClaim => "missing_claim",
            Self::MissingGroup => "missing_group",
            Self::InsufficientScope => "insufficient_scope",
            Self::IssuerUnavailable => "issuer_unavailable",
        }
    }

    /// The HTTP status a request with such a token gets: 401 for a bad
    /// credential, 403 for a good one lacking a group or scope, 503 when the
    /// issuer's keys are not available (not the client's fault).
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::MissingGroup | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::IssuerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for VerifyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected token. `Display` shows the kind and a fixed explanation; it
/// never includes the token, its claims' values or key material, so it is
/// safe to log.
#[derive(Debug)]
pub struct VerifyError {
    kind: VerifyErrorKind,
    detail: &'static str,
    /// For `unknown_issuer`: the issuers this verifier trusts (public
    /// configuration, never token data).
    expected_issuers: Option<String>,
    source: Option<jsonwebtoken::errors::Error>,
}

impl VerifyError {
    pub(crate) fn new(kind: VerifyErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            expected_issuers: None,
            source: None,
        }
    }

    /// Name the issuers that would have been accepted.
    pub(crate) fn with_expected_issuers(mut self, issuers: String) -> Self {
        self.expected_issuers = Some(issuers);
        self
    }

    /// For `unknown_issuer`: the trusted issuers, comma-separated.
    pub fn expected_issuers(&self) -> Option<&str> {
        self.expected_issuers.as_deref()
    }

    /// The stable reason.
    pub fn kind(&self) -> VerifyErrorKind {
        self.kind
    }

    /// A fixed, human-readable explanation (no token data).
    pub fn detail(&self) -> &'static str {
        self.detail
    }

    pub(crate) fn malformed(detail: &'static str) -> Self {
        Self::new(VerifyErrorKind::Malformed, detail)
    }

    pub(crate) fn missing(detail: &'static str) -> Self {
        Self::new(VerifyErrorKind::MissingClaim, detail)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)?;
        if let Some(expected) = &self.expected_issuers {
            write!(f, " (expected {expected})")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl From<jsonwebtoken::errors::Error> for VerifyError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as J;
        let (kind, detail) = match e.kind() {
            J::InvalidSignature => (VerifyErrorKind::BadSignature, "signature does not verify"),
            J::ExpiredSignature => (VerifyErrorKind::Expired, "token has expired"),
            J::ImmatureSignature => (VerifyErrorKind::NotYetValid, "token is not valid yet (nbf)"),
            J::InvalidIssuer => (VerifyErrorKind::WrongIssuer, "iss does not match"),
            J::InvalidAudience => (VerifyErrorKind::WrongAudience, "aud is not accepted"),
            J::MissingRequiredClaim(_) => {
                (VerifyErrorKind::MissingClaim, "a required claim is absent")
            }
            J::InvalidAlgorithm | J::MissingAlgorithm | J::UnsupportedAlgorithm => (
                VerifyErrorKind::AlgorithmNotAllowed,
                "algorithm not allowed for this key",
            ),
            J::InvalidRsaKey(_) | J::InvalidEcdsaKey | J::InvalidEddsaKey | J::InvalidKeyFormat => {
                (VerifyErrorKind::UnknownKey, "the issuer's key is unusable")
            }
            _ => (VerifyErrorKind::Malformed, "token does not decode"),
        };
        Self {
            kind,
            detail,
            expected_issuers: None,
            source: Some(e),
        }
    }
}

/// Why a [`Verifier`](super::Verifier) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierSetupError {
    /// The verifier or trust settings are invalid (run the config validation
    /// for the full list); `key` is the dotted setting.
    #[error("`{key}`: {message}")]
    InvalidConfig {
        /// Dotted setting, e.g. `tokens.trust[1].algorithms`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client for remote JWKS could not be created.
    #[error("could not create the JWKS HTTP client")]
    #[cfg(feature = "remote-jwks")]
    HttpClient(#[source] reqwest::Error),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        assert_eq!(
            VerifyErrorKind::AlgorithmNotAllowed.as_str(),
            "algorithm_not_allowed"
        );
        assert_eq!(
            VerifyErrorKind::IssuerUnavailable.to_string(),
            "issuer_unavailable"
        );
        assert_eq!(
            VerifyErrorKind::MissingGroup.http_status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn display_has_kind_and_fixed_detail() {
        let e = VerifyError::new(VerifyErrorKind::Expired, "token has expired");
        assert_eq!(e.to_string(), "expired: token has expired");
    }
}
