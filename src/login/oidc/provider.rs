//! The provider as its discovery document describes it: the authorization
//! request, the code exchange and the UserInfo call, with the HTTP under
//! the `oauth2` client going through our reqwest client (timeouts, no
//! redirects, bounded bodies).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

use super::config::is_https_or_loopback;
use super::id_token::JsonObject;
use super::{OidcError, PendingLogin};

/// How long a discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// After a failed discovery fetch, callers get the last good document (or an
/// error) for this long instead of another request to the provider.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// Largest discovery document, token response or UserInfo response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a request to the provider failed (discovery, UserInfo).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connect, timeout, TLS).
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    /// The provider answered with another status than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The response is larger than we read.
    #[error("response too large")]
    TooLarge,
    /// The response is not the expected JSON.
    #[error("response is not the expected JSON")]
    Json(#[source] serde_json::Error),
    /// A fetch failed moments ago; the provider is not asked again yet.
    #[error("the last fetch failed moments ago")]
    Backoff,
}

/// Our registration at the provider.
pub(super) struct Registration {
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) client_secret: Zeroizing<String>,
    pub(super) redirect_url: Url,
}

/// The token response: the standard fields plus `id_token`.
#[derive(Clone, Serialize, Deserialize)]
struct IdTokenFields {
    #[serde(default)]
    id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenFields([redacted])")
    }
}

impl ExtraTokenFields for IdTokenFields {}

type OauthClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The fields of a discovery document we use.
#[derive(Deserialize)]
pub(super) struct Discovery {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
}

/// The provider as discovered: a ready OAuth client.
pub(super) struct Provider {
    client: OauthClient,
    /// RFC 9207: the provider puts `iss` in every authorization response.
    pub(super) iss_in_response: bool,
    userinfo: Option<Url>,
    fetched: Instant,
}

/// What the token endpoint returned.
pub(super) struct Tokens {
    pub(super) id_token: String,
    pub(super) access_token: String,
}

impl Provider {
    /// Check the discovery document and build the OAuth client from it.
    pub(super) fn from_discovery(doc: Discovery, reg: &Registration) -> Result<Self, OidcError> {
        if doc.issuer != reg.issuer {
            return Err(OidcError::BadDiscovery("it names another issuer"));
        }
        if !is_https_or_loopback(&doc.authorization_endpoint)
            || !is_https_or_loopback(&doc.token_endpoint)
            || doc
                .userinfo_endpoint
                .as_ref()
                .is_some_and(|u| !is_https_or_loopback(u))
        {
            return Err(OidcError::BadDiscovery(
                "its endpoints must use https unless the host is loopback",
            ));
        }
        if doc
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| !m.iter().any(|m| m == "S256"))
        {
            return Err(OidcError::BadDiscovery(
                "it does not support PKCE with S256",
            ));
        }
        // Absent, the list defaults to client_secret_basic (OIDC Discovery §3).
        let methods = doc
            .token_endpoint_auth_methods_supported
            .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]);
        let auth_type = if methods.iter().any(|m| m == "client_secret_basic") {
            AuthType::BasicAuth
        } else if methods.iter().any(|m| m == "client_secret_post") {
            AuthType::RequestBody
        } else {
            return Err(OidcError::BadDiscovery(
                "its token endpoint takes neither client_secret_basic nor client_secret_post",
            ));
        };
        let client = oauth2::Client::new(ClientId::new(reg.client_id.clone()))
            .set_client_secret(ClientSecret::new(reg.client_secret.to_string()))
            .set_auth_type(auth_type)
            .set_auth_uri(AuthUrl::from_url(doc.authorization_endpoint))
            .set_token_uri(TokenUrl::from_url(doc.token_endpoint))
            .set_redirect_uri(RedirectUrl::from_url(reg.redirect_url.clone()));
        Ok(Self {
            client,
            iss_in_response: doc.authorization_response_iss_parameter_supported,
            userinfo: doc.userinfo_endpoint,
            fetched: Instant::now(),
        })
    }

    /// Fetch `{issuer}/.well-known/openid-configuration`.
    pub(super) async fn discover(
        http: &reqwest::Client,
        reg: &Registration,
    ) -> Result<Self, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            reg.issuer.trim_end_matches('/')
        );
        let body = get_json(http.get(url))
            .await
            .map_err(OidcError::Discovery)?;
        let doc =
            serde_json::from_slice(&body).map_err(|e| OidcError::Discovery(FetchError::Json(e)))?;
        Self::from_discovery(doc, reg)
    }

    /// The authorization URL (`response_type=code`, PKCE S256, `state`,
    /// `nonce`) and the pending login that goes with it.
    pub(super) fn authorization_request(
        &self,
        scopes: &[String],
        next: String,
    ) -> (Url, PendingLogin) {
        let state = random_token();
        let nonce = random_token();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = self
            .client
            .authorize_url(|| CsrfToken::new(state.clone()))
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .add_extra_param("nonce", nonce.clone())
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingLogin {
            state,
            nonce,
            pkce_verifier: verifier.into_secret(),
            next,
            created_at: OffsetDateTime::now_utc().unix_timestamp(),
        };
        (url, pending)
    }

    /// Exchange `code` (with the PKCE `verifier`) at the token endpoint.
    pub(super) async fn exchange(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, OidcError> {
        // An owned client per call: a future borrowing one through the
        // closure is not provably `Send` for every lifetime (axum needs it).
        let http = http.clone();
        let send = move |request: HttpRequest| {
            let http = http.clone();
            async move { execute(&http, request).await }
        };
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) if !is_server_error(r.error()) => {
                    OidcError::CodeRejected(r.error().as_ref().to_owned())
                }
                RequestTokenError::ServerResponse(r) => OidcError::TokenRequest(
                    format!("the token endpoint answered {}", r.error().as_ref()).into(),
                ),
                RequestTokenError::Request(e) => OidcError::TokenRequest(Box::new(e)),
                // The body may hold tokens: keep only the parser's message.
                RequestTokenError::Parse(e, _) => {
                    OidcError::TokenRequest(format!("unparsable token response: {e}").into())
                }
                RequestTokenError::Other(m) => OidcError::TokenRequest(m.into()),
            })?;
        let id_token = response
            .extra_fields()
            .id_token
            .clone()
            .ok_or(OidcError::NoIdToken)?;
        Ok(Tokens {
            id_token,
            access_token: response.access_token().secret().clone(),
        })
    }

    /// The UserInfo claims for `access_token`; `None` when the provider has
    /// no UserInfo endpoint.
    pub(super) async fn userinfo(
        &self,
        http: &reqwest::Client,
        access_token: &str,
    ) -> Result<Option<JsonObject>, OidcError> {
        let Some(endpoint) = &self.userinfo else {
            return Ok(None);
        };
        let failed = |e: FetchError| OidcError::UserInfo(Box::new(e));
        let body = get_json(http.get(endpoint.clone()).bearer_auth(access_token))
            .await
            .map_err(failed)?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| failed(FetchError::Json(e)))
    }
}

/// The discovered provider, cached for [`DISCOVERY_TTL`]; a failed refresh
/// keeps the last good one, and for [`DISCOVERY_RETRY`] nobody asks again
/// (a flood of logins while the provider is down sends it nothing).
#[derive(Default)]
pub(super) struct ProviderCache(tokio::sync::Mutex<CacheState>);

#[derive(Default)]
struct CacheState {
    current: Option<Arc<Provider>>,
    failed_at: Option<Instant>,
}

impl ProviderCache {
    /// The cached provider, or the result of `fetch` (one at a time).
    pub(super) async fn get<F>(&self, fetch: impl FnOnce() -> F) -> Result<Arc<Provider>, OidcError>
    where
        F: Future<Output = Result<Provider, OidcError>>,
    {
        let mut cache = self.0.lock().await;
        if let Some(p) = &cache.current
            && p.fetched.elapsed() < DISCOVERY_TTL
        {
            return Ok(Arc::clone(p));
        }
        if cache
            .failed_at
            .is_some_and(|t| t.elapsed() < DISCOVERY_RETRY)
        {
            return cache
                .current
                .clone()
                .ok_or(OidcError::Discovery(FetchError::Backoff));
        }
        match fetch().await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                cache.current = Some(Arc::clone(&provider));
                cache.failed_at = None;
                Ok(provider)
            }
            Err(err) => {
                cache.failed_at = Some(Instant::now());
                match &cache.current {
                    Some(stale) => {
                        tracing::warn!(error = %crate::error_chain(&err), "OIDC discovery refresh failed; using the last document");
                        Ok(Arc::clone(stale))
                    }
                    None => Err(err),
                }
            }
        }
    }
}

/// 256 random bits, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn is_server_error(e: &BasicErrorResponseType) -> bool {
    matches!(e.as_ref(), "server_error" | "temporarily_unavailable")
}

/// The body of a 200 JSON answer, at most [`MAX_RESPONSE_BYTES`].
async fn get_json(request: reqwest::RequestBuilder) -> Result<Vec<u8>, FetchError> {
    let response = request
        .header("accept", "application/json")
        .send()
        .await
        .map_err(FetchError::Http)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    read_limited(response).await
}

/// Why a request to the token endpoint failed below OAuth.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("request failed")]
    Http(#[from] reqwest::Error),
    #[error("unusable response: {0}")]
    Response(&'static str),
}

/// Send an oauth2 request through reqwest.
async fn execute(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = read_limited(response).await.map_err(|e| match e {
        FetchError::Http(e) => HttpError::Http(e),
        _ => HttpError::Response("body too large"),
    })?;
    builder
        .body(body)
        .map_err(|_| HttpError::Response("bad headers"))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Http)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ISS: &str = "https://idp.example.com";

    fn registration() -> Registration {
        Registration {
            issuer: ISS.to_owned(),
            client_id: "bridge".to_owned(),
            client_secret: Zeroizing::new("s3cret".to_owned()),
            redirect_url: Url::parse("https://app.example.com/callback").unwrap(),
        }
    }

    fn provider(v: serde_json::Value) -> Result<Provider, OidcError> {
        Provider::from_discovery(serde_json::from_value(v).unwrap(), &registration())
    }

    #[test]
    fn authorization_url_carries_pkce_state_and_nonce() {
        let provider = provider(serde_json::json!({
            "issuer": ISS,
            "authorization_endpoint": "https://idp.example.com/auth?x=1",
            "token_endpoint": "https://idp.example.com/token",
        }))
        .unwrap();
        let scopes = super::super::config::default_scopes();
        let (url, pending) = provider.authorization_request(&scopes, "/next".to_owned());
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/auth");
        assert_eq!(q["x"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "bridge");
        assert_eq!(q["redirect_uri"], "https://app.example.com/callback");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], pending.state);
        assert_eq!(q["nonce"], pending.nonce);
        assert_eq!(pending.next, "/next");
        assert!(pending.state.len() >= 43 && pending.nonce.len() >= 43);
        assert_ne!(pending.state, pending.nonce);
        assert!(!q.values().any(|v| v.contains(&pending.pkce_verifier)));
        assert!(!url.as_str().contains("s3cret"));
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pending.pkce_verifier.as_bytes());
        assert_eq!(
            q["code_challenge"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
        assert!(!format!("{pending:?}").contains(&pending.state));
    }

    #[test]
    fn discovery_must_name_our_issuer_and_safe_endpoints() {
        let doc = |extra: serde_json::Value| {
            let mut d = serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token"});
            for (k, v) in extra.as_object().unwrap() {
                d[k] = v.clone();
            }
            d
        };
        for (extra, ok) in [
            (serde_json::json!({}), true),
            (serde_json::json!({"issuer": format!("{ISS}/")}), false),
            (
                serde_json::json!({"authorization_endpoint": "http://a/auth"}),
                false,
            ),
            (
                serde_json::json!({"userinfo_endpoint": "http://a/me"}),
                false,
            ),
            (
                serde_json::json!({"userinfo_endpoint": "http://127.0.0.1:1/me"}),
                true,
            ),
            (
                serde_json::json!({"code_challenge_methods_supported": ["plain"]}),
                false,
            ),
            (
                serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
                false,
            ),
            (
                serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}),
                true,
            ),
        ] {
            assert_eq!(provider(doc(extra.clone())).is_ok(), ok, "{extra}");
        }
    }

    #[tokio::test]
    async fn a_failed_discovery_is_not_retried_at_once_and_keeps_the_last_document() {
        let cache = ProviderCache::default();
        let good = || async {
            provider(
                serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token"}),
            )
        };
        let down = || async { Err(OidcError::Discovery(FetchError::Status(503))) };
        assert!(matches!(
            cache.get(down).await,
            Err(OidcError::Discovery(FetchError::Status(503)))
        ));
        // Within the retry delay the provider is not asked.
        assert!(matches!(
            cache.get(good).await,
            Err(OidcError::Discovery(FetchError::Backoff))
        ));
        cache.0.lock().await.failed_at = None;
        let first = cache.get(good).await.unwrap();
        // Expired, and the refresh fails: the last document stays in use.
        cache.0.lock().await.current = Some(Arc::new(Provider {
            fetched: Instant::now() - DISCOVERY_TTL,
            ..provider(serde_json::json!({"issuer": ISS, "authorization_endpoint": "https://a/auth", "token_endpoint": "https://a/token"})).unwrap()
        }));
        assert!(cache.get(down).await.is_ok());
        drop(first);
    }
}
