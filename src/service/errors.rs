//! Errors the HTTP framework answers on its own (a body over the limit, a
//! body that could not be read, a wrong method or content type, JSON that
//! does not parse) get the same JSON body as every other error:
//! `{"error": <stable code>, "message": ...}`.
//!
//! Only the service's own routes pass through here: what the reverse proxy
//! relays from an upstream is the upstream's answer and stays untouched.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// Give a framework-made error response (plain text or empty) the JSON
/// body. Responses that already have another content type pass.
pub(super) async fn as_json(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|ct| ct.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return response;
    }
    let (code, message) = describe(status);
    let (mut parts, _framework_text) = response.into_parts();
    // The framework's text can name parser internals; the fixed message
    // says what a client needs. The length is the new body's.
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut fresh = crate::bridge::rejection::error_response(status, code, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fresh
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    fresh
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => (
            "bad_request",
            "the request could not be read (malformed, incomplete or too slow)",
        ),
        StatusCode::NOT_FOUND => ("not_found", "nothing here"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here (see the Allow header)",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request did not arrive in time"),
        StatusCode::LENGTH_REQUIRED => ("length_required", "the request needs a Content-Length"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request body has a content type this endpoint does not take",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "unprocessable",
            "the request body does not have the expected fields",
        ),
        s if s.is_server_error() => ("internal", "the request could not be handled"),
        _ => ("bad_request", "the request was refused"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::Request;
    use axum::routing::post;
    use tower::ServiceExt as _;

    async fn echo(body: axum::body::Bytes) -> axum::body::Bytes {
        body
    }

    async fn json_only(
        axum::Json(v): axum::Json<serde_json::Value>,
    ) -> axum::Json<serde_json::Value> {
        axum::Json(v)
    }

    async fn call(
        method: &str,
        uri: &str,
        ct: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value, Option<String>) {
        let app = Router::new()
            .route("/echo", post(echo))
            .route("/json", post(json_only))
            .layer(DefaultBodyLimit::max(16))
            .layer(axum::middleware::map_response(super::as_json));
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let response = app
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            allow,
        )
    }

    #[tokio::test]
    async fn framework_rejections_come_back_as_json() {
        let (s, v, _) = call("POST", "/echo", None, vec![b'x'; 64]).await;
        assert_eq!((s, v["error"].as_str()), (413, Some("payload_too_large")));
        let (s, v, allow) = call("GET", "/echo", None, vec![]).await;
        assert_eq!((s, v["error"].as_str()), (405, Some("method_not_allowed")));
        assert_eq!(allow.as_deref(), Some("POST"));
        let (s, v, _) = call("POST", "/json", Some("text/html"), b"{}".to_vec()).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (415, Some("unsupported_media_type"))
        );
        let (s, v, _) = call("POST", "/json", Some("application/json"), b"{x".to_vec()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")));
        assert!(v["message"].is_string());
        let (s, v, _) = call(
            "POST",
            "/json",
            Some("application/json"),
            b"{\"a\":1}".to_vec(),
        )
        .await;
        assert_eq!((s, v["a"].as_i64()), (200, Some(1)));
    }
}
