//! `[login]`: where the service's login endpoint checks passwords.

use std::net::IpAddr;

use serde::Deserialize;

use super::cognito::CognitoLoginConfig;
use super::oidc::OidcLoginConfig;
use crate::problems::Problems;
use crate::tokens::verify::TrustConfig;

/// `[login]`.
///
/// ```toml
/// [login]
/// source = "cognito"            # or "builtin" (the default: the users file)
///
/// [login.cognito]
/// region = "eu-west-1"
/// user_pool_id = "eu-west-1_AbCdEf123"
/// client_id = "1example23456789"
/// # client_secret_file = "/run/secrets/cognito-client-secret"
/// ```
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoginConfig {
    /// Which password source `POST /login` uses.
    pub source: LoginSourceKind,
    /// `[login.cognito]`, for `source = "cognito"`.
    pub cognito: Option<CognitoLoginConfig>,
    /// `[login.oidc]`: sign-in with an OpenID Connect provider (`/login/oidc`),
    /// whatever the password source.
    pub oidc: Option<OidcLoginConfig>,
    /// Reverse proxies (CIDRs, e.g. `["127.0.0.1/32", "10.0.0.0/8"]`) whose
    /// `X-Forwarded-For` is believed when rate-limiting logins by client
    /// address. Empty (the default): the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl LoginConfig {
    /// The address to rate-limit a login by: the TCP peer, or, when the peer
    /// is a trusted proxy, the rightmost `X-Forwarded-For` address that is
    /// not itself a trusted proxy (the leftmost entries are whatever the
    /// client chose to send).
    pub fn client_address(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        client_address(&self.trusted_proxies, peer, headers)
    }
}

/// See [`LoginConfig::client_address`].
pub(crate) fn client_address(
    trusted_proxies: &[ipnet::IpNet],
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted(ip))
        .unwrap_or(peer)
}

/// Password sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginSourceKind {
    /// The built-in users file.
    #[default]
    Builtin,
    /// A Cognito user pool (`USER_PASSWORD_AUTH`).
    Cognito,
    /// No password logins (tokens from trusted issuers only).
    None,
}

impl LoginConfig {
    /// Record problems under `key`; `trust` is the configured trusted issuers
    /// (a Cognito pool used for logins must be one).
    pub fn validate(&self, key: &str, trust: &[TrustConfig], problems: &mut Problems) {
        if let Some(oidc) = &self.oidc {
            oidc.validate(&format!("{key}.oidc"), trust, problems);
        }
        match (self.source, &self.cognito) {
            (LoginSourceKind::Cognito, None) => {
                problems.push(
                    format!("{key}.cognito"),
                    "required when login.source = \"cognito\"",
                );
            }
            (LoginSourceKind::Cognito, Some(cognito)) => {
                cognito.validate(&format!("{key}.cognito"), problems);
                let trusted = trust.iter().any(|t| match t {
                    TrustConfig::Cognito(c) => {
                        c.user_pool_id == cognito.user_pool_id
                            && c.client_ids.contains(&cognito.client_id)
                    }
                    _ => false,
                });
                if !trusted {
                    problems.push(
                        format!("{key}.cognito.user_pool_id"),
                        "add a [[tokens.trust]] entry with kind = \"cognito\", this user_pool_id and this client_id in client_ids",
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod client_address_tests {
    use super::*;

    fn headers(xff: &[&'static str]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", axum::http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let cfg = LoginConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..LoginConfig::default()
        };
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        // A client behind the proxy, who also sent a forged entry.
        let h = headers(&["1.2.3.4, 203.0.113.5"]);
        assert_eq!(
            cfg.client_address(proxy, &h),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // Two trusted hops.
        let h = headers(&["203.0.113.5", "10.9.9.9"]);
        assert_eq!(
            cfg.client_address(proxy, &h),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // A direct client's header is ignored.
        assert_eq!(cfg.client_address(stranger, &h), stranger);
        // Nothing usable: the proxy itself.
        assert_eq!(cfg.client_address(proxy, &headers(&["garbage"])), proxy);
    }
}
