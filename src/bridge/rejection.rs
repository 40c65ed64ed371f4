//! Why a request was not let through, as an HTTP response with a stable code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::tokens::verify::VerifyErrorKind;

/// An authentication or authorization failure. Each maps to one status and
/// one machine-readable `error` code; details stay in the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No credential this route accepts was presented.
    MissingCredential,
    /// A token was presented and failed verification.
    InvalidToken(VerifyErrorKind),
    /// A token from an issuer this service does not trust (`invalid_token`
    /// with reason `unknown_issuer`); the answer names the issuer of this
    /// service's own tokens, which its discovery document publishes anyway.
    UnknownIssuer {
        /// This service's own issuer (`iss` of the tokens it mints).
        expected: String,
    },
    /// A session cookie was presented and is not a live session.
    InvalidSession,
    /// The credential was revoked (logout, logout everywhere).
    Revoked,
    /// A cookie-authenticated state change without same-origin proof.
    CsrfFailed,
    /// A store the check needs is unreachable.
    Unavailable,
    /// A path the application could read differently than the policy
    /// (dot segments, encoded slashes, …).
    AmbiguousPath,
}

impl AuthRejection {
    /// The stable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::InvalidToken(_) | Self::UnknownIssuer { .. } => "invalid_token",
            Self::InvalidSession => "invalid_session",
            Self::Revoked => "revoked",
            Self::CsrfFailed => "csrf_failed",
            Self::Unavailable => "unavailable",
            Self::AmbiguousPath => "ambiguous_path",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::CsrfFailed => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::AmbiguousPath => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// Outcome label for metrics.
    pub fn outcome(&self) -> &'static str {
        self.code()
    }

    fn message(&self) -> &'static str {
        match self {
            Self::MissingCredential => "authentication required",
            Self::InvalidToken(_) => "the token is not valid",
            Self::UnknownIssuer { .. } => "the token's issuer is not trusted here",
            Self::InvalidSession => "the session is not valid or has ended",
            Self::Revoked => "the credential was revoked",
            Self::CsrfFailed => "cross-site request refused",
            Self::Unavailable => "authentication is temporarily unavailable",
            Self::AmbiguousPath => {
                "the request path is ambiguous (dot segments, encoded slashes or similar)"
            }
        }
    }
}

/// The one error body of every endpoint, library and service:
/// `{"error": <stable code>, "message": <fixed, safe text>}`.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": code, "message": message })
}

/// An error answer: `status`, the [`error_body`], `Cache-Control: no-store`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    json_error(status, error_body(code, message))
}

fn json_error(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut body = error_body(self.code(), self.message());
        if let Self::InvalidToken(kind) = &self {
            // The kind (expired, bad_signature, …) helps clients refresh; it
            // reveals nothing a client could not find out itself.
            body["reason"] = json!(kind.as_str());
        }
        if let Self::UnknownIssuer { expected } = &self {
            body["reason"] = json!(VerifyErrorKind::UnknownIssuer.as_str());
            body["message"] = json!(format!(
                "the token's issuer is not trusted here; this service's tokens are issued by {expected}"
            ));
            body["expected_issuer"] = json!(expected);
        }
        let mut response = json_error(self.status(), body);
        let headers = response.headers_mut();
        match self {
            Self::InvalidToken(_) | Self::UnknownIssuer { .. } | Self::Revoked => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Self::MissingCredential => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
