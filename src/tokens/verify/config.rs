//! `[tokens.verify]` (verifier limits) and `[[tokens.trust]]` (external
//! issuers whose tokens are accepted).
//!
//! ```toml
//! [tokens.verify]
//! leeway = "30s"
//!
//! [[tokens.trust]]
//! kind = "cognito"
//! region = "eu-west-1"
//! user_pool_id = "eu-west-1_AbCdEf123"
//! client_ids = ["3n4b5urk1ft4fl3mg5e62d9ado"]
//!
//! [[tokens.trust]]
//! kind = "oidc"
//! issuer = "https://login.example.com"
//! audiences = ["urn:my-api"]
//! ```

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::problems::Problems;

/// Largest accepted clock-skew allowance: beyond this an "expired" token is
/// not expired in any useful sense.
pub const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// Limits and timings of the verifier (`[tokens.verify]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Largest token accepted, in bytes, checked before any decoding (default 8 KiB).
    pub max_token_bytes: usize,
    /// How often a remote issuer's JWKS is refetched (default 1 h).
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// Least time between the end of one fetch of an issuer's JWKS and a
    /// refetch caused by a token with an unknown `kid` (default 10 s): bounds
    /// what a flood of forged tokens can make us send to the IdP. Counted
    /// from the end of a fetch, so it may be shorter than `http_timeout`.
    #[serde(with = "humantime_serde")]
    pub jwks_cooldown: Duration,
    /// Timeout of one JWKS fetch as a whole, discovery and connect included
    /// (default 5 s): the longest a request with an unknown `kid` waits.
    #[serde(with = "humantime_serde")]
    pub http_timeout: Duration,
    /// Largest JWKS or discovery document accepted, in bytes (default 256 KiB).
    pub max_jwks_bytes: usize,
    /// Memory for tokens seen before, in bytes (default 16 MiB, about
    /// 17 000 typical access tokens; 0 turns the cache off): a token
    /// verified once skips the signature check until it expires or its
    /// issuer's keys change. Revocation is still checked every time.
    pub cache_bytes: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(30),
            max_token_bytes: 8 * 1024,
            jwks_refresh: Duration::from_secs(3600),
            jwks_cooldown: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            max_jwks_bytes: 256 * 1024,
            cache_bytes: 16 * 1024 * 1024,
        }
    }
}

impl VerifyConfig {
    /// Record every invalid setting under `key` (normally `tokens.verify`).
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if self.leeway > MAX_LEEWAY {
            problems.push(format!("{key}.leeway"), "must be at most 5m");
        }
        if !(1024..=1024 * 1024).contains(&self.max_token_bytes) {
            problems.push(
                format!("{key}.max_token_bytes"),
                "must be between 1024 and 1048576",
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600))
            .contains(&self.jwks_refresh)
        {
            problems.push(
                format!("{key}.jwks_refresh"),
                "must be between 1s and 7days",
            );
        }
        if self.jwks_cooldown < Duration::from_millis(100) || self.jwks_cooldown > self.jwks_refresh
        {
            problems.push(
                format!("{key}.jwks_cooldown"),
                "must be at least 100ms and at most `jwks_refresh`",
            );
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.http_timeout) {
            problems.push(
                format!("{key}.http_timeout"),
                "must be between 100ms and 60s",
            );
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_jwks_bytes) {
            problems.push(
                format!("{key}.max_jwks_bytes"),
                "must be between 1024 and 16777216",
            );
        }
        if self.cache_bytes > 1024 * 1024 * 1024 {
            problems.push(
                format!("{key}.cache_bytes"),
                "must be at most 1073741824 (1 GiB)",
            );
        }
    }
}

/// Which Cognito-style token uses an issuer may present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUseSetting {
    /// Access tokens only (`token_use = "access"`, checked against `client_id`).
    Access,
    /// ID tokens only (`token_use = "id"`, checked against `aud`).
    Id,
    /// Both kinds.
    #[default]
    Both,
}

impl TokenUseSetting {
    /// Whether a token of `use_` is allowed.
    pub fn allows(self, use_: super::TokenUse) -> bool {
        matches!(
            (self, use_),
            (Self::Both, _)
                | (Self::Access, super::TokenUse::Access)
                | (Self::Id, super::TokenUse::Id)
        )
    }
}

/// One trusted external issuer (`[[tokens.trust]]`), selected by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrustConfig {
    /// An AWS Cognito user pool.
    Cognito(CognitoTrust),
    /// Any OpenID Connect issuer, found through its discovery document.
    Oidc(OidcTrust),
}

/// `kind = "cognito"`: issuer and JWKS URL follow from region and pool id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoTrust {
    /// Name in logs and metrics (default `cognito:<user_pool_id>`).
    #[serde(default)]
    pub name: Option<String>,
    /// AWS region of the pool, e.g. `eu-west-1`.
    pub region: String,
    /// Pool id, e.g. `eu-west-1_AbCdEf123`.
    pub user_pool_id: String,
    /// Where to fetch the JWKS instead of the pool's public URL (a local
    /// Cognito emulator serves it elsewhere while its tokens carry the real
    /// AWS issuer).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// App client ids accepted: `client_id` of access tokens, `aud` of ID tokens.
    pub client_ids: Vec<String>,
    /// Which token uses are accepted (default both).
    #[serde(default)]
    pub token_use: TokenUseSetting,
    /// Signature algorithms accepted (default `["RS256"]`, Cognito's).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Groups (`cognito:groups`) a token must all carry.
    #[serde(default)]
    pub required_groups: Vec<String>,
    /// Scopes (`scope`) a token must all carry.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

/// `kind = "oidc"`: keys found through `{issuer}/.well-known/openid-configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcTrust {
    /// Name in logs and metrics (default: the issuer).
    #[serde(default)]
    pub name: Option<String>,
    /// The issuer, exactly as in its tokens' `iss` and its discovery document.
    pub issuer: String,
    /// Accepted `aud` values (at least one: an IdP signs tokens for many APIs).
    pub audiences: Vec<String>,
    /// When set, the token's `client_id` (or `azp`) must be one of these.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Which token uses are accepted (default both): access tokens are told
    /// apart by `token_use = "access"` or the RFC 9068 header `typ: at+jwt`.
    #[serde(default)]
    pub token_use: TokenUseSetting,
    /// Signature algorithms accepted (default `["RS256"]`).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Groups (`groups` or `cognito:groups`) a token must all carry.
    #[serde(default)]
    pub required_groups: Vec<String>,
    /// Scopes (`scope`) a token must all carry.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_owned()]
}

impl TrustConfig {
    /// The `iss` value this issuer's tokens carry.
    pub fn issuer(&self) -> String {
        match self {
            Self::Cognito(c) => {
                format!(
                    "https://cognito-idp.{}.amazonaws.com/{}",
                    c.region, c.user_pool_id
                )
            }
            Self::Oidc(o) => o.issuer.clone(),
        }
    }

    /// Name in logs, metrics and errors.
    pub fn name(&self) -> String {
        match self {
            Self::Cognito(c) => c
                .name
                .clone()
                .unwrap_or_else(|| format!("cognito:{}", c.user_pool_id)),
            Self::Oidc(o) => o.name.clone().unwrap_or_else(|| o.issuer.clone()),
        }
    }

    /// Signature algorithms accepted, as configured (validated by [`Self::validate`]).
    pub fn algorithms(&self) -> &[String] {
        match self {
            Self::Cognito(c) => &c.algorithms,
            Self::Oidc(o) => &o.algorithms,
        }
    }

    /// Record every invalid setting under `key` (e.g. `tokens.trust[0]`).
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        let (name, algorithms) = match self {
            Self::Cognito(c) => {
                c.validate(key, problems);
                (&c.name, &c.algorithms)
            }
            Self::Oidc(o) => {
                o.validate(key, problems);
                (&o.name, &o.algorithms)
            }
        };
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            problems.push(format!("{key}.name"), "must not be empty");
        }
        validate_algorithms(&format!("{key}.algorithms"), algorithms, problems);
    }

    /// Check a whole `[[tokens.trust]]` list: each entry, plus issuers and
    /// names that must be unique (a token is routed by its `iss`).
    pub fn validate_all(trust: &[TrustConfig], key: &str, problems: &mut Problems) {
        let mut issuers = HashSet::new();
        let mut names = HashSet::new();
        for (i, t) in trust.iter().enumerate() {
            let k = format!("{key}[{i}]");
            t.validate(&k, problems);
            if !issuers.insert(t.issuer()) {
                problems.push(k.clone(), "issuer already trusted by an earlier entry");
            }
            if !names.insert(t.name()) {
                problems.push(format!("{k}.name"), "must be unique");
            }
        }
    }
}

impl CognitoTrust {
    fn validate(&self, key: &str, problems: &mut Problems) {
        let region_ok = is_region(&self.region);
        if !region_ok {
            problems.push(format!("{key}.region"), "must look like us-east-1");
        }
        match self.user_pool_id.split_once('_') {
            Some((region, id))
                if is_region(region)
                    && !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                if region_ok && region != self.region {
                    problems.push(format!("{key}.user_pool_id"), "must start with `region`");
                }
            }
            _ => problems.push(
                format!("{key}.user_pool_id"),
                "must look like us-east-1_AbCdEf123",
            ),
        }
        if let Some(url) = &self.jwks_url {
            validate_url(&format!("{key}.jwks_url"), url, problems);
        }
        validate_ids(&format!("{key}.client_ids"), &self.client_ids, problems);
        validate_ids(
            &format!("{key}.required_groups"),
            &self.required_groups,
            problems,
        );
        validate_ids(
            &format!("{key}.required_scopes"),
            &self.required_scopes,
            problems,
        );
        if self.client_ids.is_empty() {
            problems.push(
                format!("{key}.client_ids"),
                "must name at least one app client",
            );
        }
    }
}

impl OidcTrust {
    fn validate(&self, key: &str, problems: &mut Problems) {
        validate_url(&format!("{key}.issuer"), &self.issuer, problems);
        if self.audiences.is_empty() {
            problems.push(
                format!("{key}.audiences"),
                "must name at least one audience",
            );
        }
        validate_ids(&format!("{key}.audiences"), &self.audiences, problems);
        validate_ids(&format!("{key}.client_ids"), &self.client_ids, problems);
        validate_ids(
            &format!("{key}.required_groups"),
            &self.required_groups,
            problems,
        );
        validate_ids(
            &format!("{key}.required_scopes"),
            &self.required_scopes,
            problems,
        );
    }
}

/// Parse an algorithm allowlist: only asymmetric signature algorithms, since
/// the keys come from a public JWKS (an HMAC "key" there would be public).
pub(crate) fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let alg: Algorithm = name
            .parse()
            .map_err(|_| format!("`{name}` is not a supported signature algorithm"))?;
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(format!(
                "`{name}` is symmetric: only public-key algorithms are allowed"
            ));
        }
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err("must name at least one algorithm".to_owned());
    }
    Ok(out)
}

fn validate_algorithms(key: &str, names: &[String], problems: &mut Problems) {
    if let Err(message) = parse_algorithms(names) {
        problems.push(key, message);
    }
}

fn validate_ids(key: &str, ids: &[String], problems: &mut Problems) {
    if ids.iter().any(|id| id.is_empty() || id.len() > 256) {
        problems.push(key, "entries must be 1 to 256 characters");
    }
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && s.len() <= 32
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Keys must come over TLS, or from this machine (test IdPs, sidecars).
pub(crate) fn validate_url(key: &str, raw: &str, problems: &mut Problems) {
    match Url::parse(raw) {
        Err(e) => problems.push(key, format!("must be a URL ({e})")),
        Ok(url) => match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => problems.push(key, "must use https unless the host is loopback"),
            _ => problems.push(key, "must be an https URL"),
        },
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use figment::providers::Format as _;

    fn problems_of(f: impl FnOnce(&mut Problems)) -> Vec<(String, String)> {
        let mut p = Problems::default();
        f(&mut p);
        p.into_vec()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    fn parse_trust(toml_src: &str) -> Result<Vec<TrustConfig>, String> {
        #[derive(Deserialize)]
        struct Doc {
            trust: Vec<TrustConfig>,
        }
        figment::Figment::from(figment::providers::Toml::string(toml_src))
            .extract::<Doc>()
            .map(|d| d.trust)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let cfg = VerifyConfig::default();
        assert_eq!(cfg.leeway, Duration::from_secs(30));
        assert!(problems_of(|p| cfg.validate("tokens.verify", p)).is_empty());
    }

    #[test]
    fn verify_config_parses_humantime_and_caps_leeway() {
        let cfg: VerifyConfig = figment::Figment::from(figment::providers::Toml::string(
            "leeway = \"10m\"\njwks_cooldown = \"2s\"",
        ))
        .extract()
        .unwrap();
        assert_eq!(cfg.jwks_cooldown, Duration::from_secs(2));
        let p = problems_of(|p| cfg.validate("tokens.verify", p));
        assert_eq!(
            p,
            vec![(
                "tokens.verify.leeway".to_owned(),
                "must be at most 5m".to_owned()
            )]
        );
        let err = figment::Figment::from(figment::providers::Toml::string("leway = \"1s\""))
            .extract::<VerifyConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("leway"), "{err}");
    }

    #[test]
    fn cognito_entry_derives_issuer_and_validates() {
        let trust = parse_trust(
            r#"
            [[trust]]
            kind = "cognito"
            region = "eu-west-1"
            user_pool_id = "eu-west-1_AbCdEf123"
            client_ids = ["abc"]
            token_use = "access"
            "#,
        )
        .unwrap();
        assert_eq!(
            trust[0].issuer(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
        );
        assert_eq!(trust[0].name(), "cognito:eu-west-1_AbCdEf123");
        assert!(problems_of(|p| TrustConfig::validate_all(&trust, "tokens.trust", p)).is_empty());
    }

    #[test]
    fn bad_entries_name_full_keys() {
        let trust = parse_trust(
            r#"
            [[trust]]
            kind = "cognito"
            region = "eu-west-1"
            user_pool_id = "pool"
            client_ids = []
            jwks_url = "http://example.com/jwks"
            algorithms = ["HS256"]

            [[trust]]
            kind = "oidc"
            issuer = "not a url"
            audiences = ["x"]
            algorithms = ["none"]
            "#,
        )
        .unwrap();
        let keys: Vec<String> =
            problems_of(|p| TrustConfig::validate_all(&trust, "tokens.trust", p))
                .into_iter()
                .map(|(k, _)| k)
                .collect();
        for want in [
            "tokens.trust[0].user_pool_id",
            "tokens.trust[0].jwks_url",
            "tokens.trust[0].client_ids",
            "tokens.trust[0].algorithms",
            "tokens.trust[1].issuer",
            "tokens.trust[1].algorithms",
        ] {
            assert!(
                keys.iter().any(|k| k == want),
                "{want} missing from {keys:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let err = parse_trust("[[trust]]\nkind = \"oidc\"\nissuer = \"https://a\"\naudiences = [\"x\"]\naudience = \"y\"")
            .unwrap_err();
        assert!(err.contains("audience"), "{err}");
        assert!(parse_trust("[[trust]]\nkind = \"saml\"\nissuer = \"https://a\"").is_err());
    }

    #[test]
    fn loopback_http_is_allowed() {
        for (url, ok) in [
            ("http://127.0.0.1:5000/x", true),
            ("http://[::1]:5000/x", true),
            ("http://localhost/x", true),
            ("https://idp.example.com", true),
            ("http://idp.example.com", false),
            ("ftp://127.0.0.1", false),
        ] {
            assert_eq!(
                problems_of(|p| validate_url("k", url, p)).is_empty(),
                ok,
                "{url}"
            );
        }
    }
}
