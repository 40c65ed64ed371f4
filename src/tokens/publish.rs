//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`:
//! what a Cognito- or OIDC-style verifier fetches to check our tokens.
//!
//! Both documents are rendered once per key ring change and served from
//! memory with `Cache-Control` and a content-derived `ETag` (the same on
//! every instance sharing the key file), answering `304` to a matching
//! `If-None-Match`.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use serde::Serialize;

use crate::tokens::keys::KeyRing;

/// Path of the JWKS document.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the OpenID Connect discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Verifiers may cache both documents this long. A rotation stays safe
/// because the `next` key is published a full rotation ahead of its use.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The static part of the discovery document. Only what the service really
/// supports belongs here; `id_token_signing_alg_values_supported` is added
/// from the live keys when the document is rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OpenIdConfiguration {
    /// `issuer`: exactly the `iss` of our tokens.
    pub issuer: String,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// `authorization_endpoint`, once the service has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`, once the service has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// `end_session_endpoint`, once the service has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// `response_types_supported` (required by the spec; empty while the
    /// service has no authorization endpoint).
    pub response_types_supported: Vec<String>,
    /// `subject_types_supported`: `public` (one `sub` for every client).
    pub subject_types_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported`, once there is a token endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `claims_supported`: the claims our tokens carry.
    pub claims_supported: Vec<String>,
}

impl OpenIdConfiguration {
    /// The document for `issuer` (the service's public URL), with
    /// `jwks_uri` under it and no endpoints.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let claims = [
            "sub",
            "iss",
            "aud",
            "client_id",
            "token_use",
            "scope",
            "auth_time",
            "iat",
            "exp",
            "jti",
            "origin_jti",
            "username",
            "cognito:username",
            "cognito:groups",
            "email",
            "name",
        ];
        Self {
            jwks_uri: format!("{}{JWKS_PATH}", issuer.trim_end_matches('/')),
            issuer,
            authorization_endpoint: None,
            token_endpoint: None,
            end_session_endpoint: None,
            response_types_supported: Vec::new(),
            subject_types_supported: vec!["public".to_owned()],
            token_endpoint_auth_methods_supported: Vec::new(),
            claims_supported: claims.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// The routes of both documents for `issuer`.
///
/// The router carries its own state, so it fits into any application:
/// `app.merge(publish::router(keys, issuer))` whatever the app's state
/// type `S` is.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use session_bridge::tokens::config::TokensConfig;
/// use session_bridge::tokens::keys::KeyRing;
/// use session_bridge::tokens::publish;
///
/// let (ring, _) = KeyRing::load_or_generate(&TokensConfig::default(), ".data".as_ref())?;
/// let app: axum::Router = publish::router(Arc::new(ring), "https://auth.example.com".to_owned());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
pub fn router<S>(keys: Arc<KeyRing>, issuer: String) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router_with(keys, OpenIdConfiguration::new(issuer))
}

/// Like [`router`], with a discovery document the caller completed (for
/// example with the endpoints of a login flow).
pub fn router_with<S>(keys: Arc<KeyRing>, discovery: OpenIdConfiguration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let state = Published {
        keys,
        discovery: Arc::new(discovery),
        rendered: Arc::new(ArcSwapOption::empty()),
    };
    Router::new()
        .route(JWKS_PATH, get(jwks))
        .route(DISCOVERY_PATH, get(openid_configuration))
        .with_state(state)
}

#[derive(Clone)]
struct Published {
    keys: Arc<KeyRing>,
    discovery: Arc<OpenIdConfiguration>,
    rendered: Arc<ArcSwapOption<Rendered>>,
}

/// Both documents for one state of the key ring.
struct Rendered {
    /// What they were rendered from: the ring hands out the same `Arc` until
    /// its keys change, so pointer equality means "still current".
    source: Arc<JwkSet>,
    jwks: Document,
    discovery: Document,
}

struct Document {
    body: Bytes,
    etag: HeaderValue,
}

impl Document {
    fn new(body: Vec<u8>) -> Result<Self, serde_json::Error> {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        // 128 bits of the content hash: equal documents, equal tags, on every instance.
        let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]));
        let etag = HeaderValue::from_str(&tag).map_err(serde::ser::Error::custom)?;
        Ok(Self {
            body: Bytes::from(body),
            etag,
        })
    }

    fn respond(&self, request: &HeaderMap) -> Response {
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
            (header::ETAG, self.etag.clone()),
            // Public documents: browser-side verifiers may fetch them.
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ];
        if matches_etag(request, &self.etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body.clone()).into_response()
    }
}

/// `If-None-Match` lists our tag (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn matches_etag(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate).as_bytes() == ours
        })
}

impl Published {
    fn rendered(&self) -> Result<Arc<Rendered>, serde_json::Error> {
        let source = self.keys.jwks();
        if let Some(rendered) = self
            .rendered
            .load_full()
            .filter(|r| Arc::ptr_eq(&r.source, &source))
        {
            return Ok(rendered);
        }
        // Two requests racing here both render; the result is the same.
        let mut algorithms: Vec<String> = Vec::new();
        for jwk in &source.keys {
            if let Some(alg) = jwk
                .common
                .key_algorithm
                .map(|a| a.to_string())
                .filter(|a| !algorithms.contains(a))
            {
                algorithms.push(alg);
            }
        }
        #[derive(Serialize)]
        struct WithAlgorithms<'a> {
            #[serde(flatten)]
            doc: &'a OpenIdConfiguration,
            id_token_signing_alg_values_supported: Vec<String>,
        }
        let discovery = WithAlgorithms {
            doc: &self.discovery,
            id_token_signing_alg_values_supported: algorithms,
        };
        let rendered = Arc::new(Rendered {
            jwks: Document::new(serde_json::to_vec(&*source)?)?,
            discovery: Document::new(serde_json::to_vec(&discovery)?)?,
            source,
        });
        self.rendered.store(Some(Arc::clone(&rendered)));
        Ok(rendered)
    }
}

async fn jwks(State(state): State<Published>, request: HeaderMap) -> Response {
    match state.rendered() {
        Ok(rendered) => rendered.jwks.respond(&request),
        Err(err) => render_failed(&err),
    }
}

async fn openid_configuration(State(state): State<Published>, request: HeaderMap) -> Response {
    match state.rendered() {
        Ok(rendered) => rendered.discovery.respond(&request),
        Err(err) => render_failed(&err),
    }
}

fn render_failed(err: &serde_json::Error) -> Response {
    tracing::error!(error = %err, "cannot render the JWKS / discovery documents");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::*;
    use crate::tokens::config::SigningAlgorithm;

    fn app(alg: SigningAlgorithm) -> (tempfile::TempDir, Arc<KeyRing>, Router) {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _) = KeyRing::open(dir.path().join("keys.json"), alg, true).unwrap();
        let ring = Arc::new(ring);
        let app = router(Arc::clone(&ring), "https://bridge.test/".to_owned());
        (dir, ring, app)
    }

    async fn get(
        app: &Router,
        path: &str,
        if_none_match: Option<&str>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            axum::body::to_bytes(body, 1 << 20).await.unwrap(),
        )
    }

    #[tokio::test]
    async fn jwks_lists_the_live_public_keys_with_cache_headers() {
        let (_dir, ring, app) = app(SigningAlgorithm::ES256);
        let (status, headers, body) = get(&app, JWKS_PATH, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], CACHE_CONTROL);
        assert!(headers.contains_key(header::ETAG));
        let served: JwkSet = serde_json::from_slice(&body).unwrap();
        assert_eq!(served, *ring.jwks());
        let raw: Value = serde_json::from_slice(&body).unwrap();
        for key in raw["keys"].as_array().unwrap() {
            assert!(key.get("d").is_none(), "no private part");
        }
    }

    #[tokio::test]
    async fn matching_if_none_match_gets_304_and_rotation_changes_the_tag() {
        let (_dir, ring, app) = app(SigningAlgorithm::EdDSA);
        let (_, headers, _) = get(&app, JWKS_PATH, None).await;
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();

        let (status, headers, body) = get(&app, JWKS_PATH, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(headers[header::ETAG], etag.as_str());
        let (status, _, _) = get(&app, JWKS_PATH, Some(&format!("\"other\", W/{etag}"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);

        ring.rotate().unwrap();
        let (status, headers, body) = get(&app, JWKS_PATH, Some(&etag)).await;
        assert_eq!(status, StatusCode::OK, "new keys, new document");
        assert_ne!(headers[header::ETAG], etag.as_str());
        let served: JwkSet = serde_json::from_slice(&body).unwrap();
        assert_eq!(served.keys.len(), 3);
    }

    #[tokio::test]
    async fn discovery_names_issuer_jwks_uri_and_live_algorithms() {
        let (_dir, _ring, app) = app(SigningAlgorithm::RS256);
        let (status, headers, body) = get(&app, DISCOVERY_PATH, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], CACHE_CONTROL);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["issuer"], "https://bridge.test/");
        assert_eq!(doc["jwks_uri"], "https://bridge.test/.well-known/jwks.json");
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert_eq!(
            doc["subject_types_supported"],
            serde_json::json!(["public"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!([]));
        assert!(
            doc.get("token_endpoint").is_none(),
            "no endpoint we do not have"
        );
        assert!(doc.get("token_endpoint_auth_methods_supported").is_none());
    }

    #[tokio::test]
    async fn the_router_fits_an_app_with_its_own_state() {
        let (_dir, ring, _) = app(SigningAlgorithm::EdDSA);
        let app: Router<u32> = router(ring, "https://bridge.test".to_owned());
        let app: Router = app.with_state(7u32);
        let (status, _, _) = get(&app, DISCOVERY_PATH, None).await;
        assert_eq!(status, StatusCode::OK);
    }
}
