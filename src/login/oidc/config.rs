//! `[login.oidc]`: the provider users sign in with, and its validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::problems::Problems;
use crate::tokens::verify::{TokenUse, TrustConfig};

/// Paths the service serves itself: a callback there would shadow them.
pub const RESERVED_PATHS: &[&str] = &[
    "/",
    "/login",
    "/login/oidc",
    "/logout",
    "/logout/all",
    "/token",
    "/session",
    "/healthz",
    "/readyz",
    "/metrics",
    crate::tokens::publish::JWKS_PATH,
    crate::tokens::publish::DISCOVERY_PATH,
];

/// `[login.oidc]`: an OpenID Connect provider users sign in with.
///
/// ```toml
/// [login.oidc]
/// issuer = "https://login.example.com"
/// client_id = "session-bridge"
/// client_secret_file = "/run/secrets/oidc-client-secret"
/// # scopes = ["openid", "profile", "email"]
/// # redirect_url = "https://app.example.com/callback"   # default <public_url>/callback
/// # display_name = "Example SSO"
///
/// [[tokens.trust]]                 # required: the provider's ID tokens are verified as trusted tokens
/// kind = "oidc"
/// issuer = "https://login.example.com"
/// audiences = ["session-bridge"]
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcLoginConfig {
    /// The provider's issuer, exactly as in its discovery document and its
    /// tokens' `iss`.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// File holding the client secret (never the secret itself in the
    /// configuration).
    pub client_secret_file: PathBuf,
    /// Scopes requested (default `openid profile email`; `openid` required).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back (default
    /// `<public_url>/callback`); its path is the callback route.
    #[serde(default)]
    pub redirect_url: Option<Url>,
    /// Shown on the login page: "Sign in with …" (default: the issuer's host).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Timeout of each request to the provider, connect included (default 5 s).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

pub(super) fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for OidcLoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLoginConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url.as_ref().map(Url::as_str))
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl OidcLoginConfig {
    /// Record problems under `key` (normally `login.oidc`); `trust` must hold
    /// an OIDC entry for the issuer that accepts this client's ID tokens.
    pub fn validate(&self, key: &str, trust: &[TrustConfig], problems: &mut Problems) {
        match Url::parse(&self.issuer) {
            Ok(url) if !is_https_or_loopback(&url) => problems.push(
                format!("{key}.issuer"),
                "must use https unless the host is loopback",
            ),
            Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                problems.push(format!("{key}.issuer"), "must not have a query or fragment");
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{key}.issuer"), format!("must be a URL ({e})")),
        }
        let trusted = trust.iter().any(|t| match t {
            TrustConfig::Oidc(o) => {
                o.issuer == self.issuer
                    && o.audiences.contains(&self.client_id)
                    && o.token_use.allows(TokenUse::Id)
                    && (o.client_ids.is_empty() || o.client_ids.contains(&self.client_id))
            }
            TrustConfig::Cognito(_) => false,
        });
        if !trusted {
            problems.push(
                format!("{key}.issuer"),
                "add a [[tokens.trust]] entry with kind = \"oidc\", this exact issuer and this \
                 client_id in audiences (token_use must allow id tokens)",
            );
        }
        if self.client_id.is_empty() || self.client_id.len() > 256 {
            problems.push(format!("{key}.client_id"), "must be 1 to 256 characters");
        }
        if self.client_secret_file.as_os_str().is_empty() {
            problems.push(format!("{key}.client_secret_file"), "must name a file");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problems.push(format!("{key}.scopes"), "must include `openid`");
        }
        // RFC 6749 §3.3 scope-token: printable ASCII except space, `"`, `\`.
        if self.scopes.iter().any(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        }) {
            problems.push(
                format!("{key}.scopes"),
                "entries must be printable ASCII without spaces, quotes or backslashes",
            );
        }
        if let Some(url) = &self.redirect_url {
            let k = format!("{key}.redirect_url");
            if !is_https_or_loopback(url) {
                problems.push(&k, "must use https unless the host is loopback");
            }
            if url.fragment().is_some() || url.query().is_some() {
                problems.push(&k, "must not have a query or fragment");
            }
            if let Err(message) = check_callback_path(url.path()) {
                problems.push(&k, message);
            }
        }
        if let Some(name) = &self.display_name
            && (name.trim().is_empty() || name.chars().count() > 64)
        {
            problems.push(format!("{key}.display_name"), "must be 1 to 64 characters");
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.timeout) {
            problems.push(format!("{key}.timeout"), "must be between 100ms and 60s");
        }
    }
}

/// Whether `path` can be the callback route: plain path characters (it
/// becomes a router path) and not a path the service serves already.
pub(super) fn check_callback_path(path: &str) -> Result<(), &'static str> {
    let plain = path.len() > 1
        && path.starts_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    if !plain {
        return Err("path must be a plain path like /callback (letters, digits, - _ . ~)");
    }
    if RESERVED_PATHS.contains(&path) {
        return Err("path is already served by session-bridge");
    }
    Ok(())
}

pub(super) fn is_https_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use figment::providers::Format as _;

    fn parse(toml_src: &str) -> (OidcLoginConfig, Vec<TrustConfig>) {
        #[derive(Deserialize)]
        struct Doc {
            oidc: OidcLoginConfig,
            #[serde(default)]
            trust: Vec<TrustConfig>,
        }
        let d: Doc = figment::Figment::from(figment::providers::Toml::string(toml_src))
            .extract()
            .unwrap();
        (d.oidc, d.trust)
    }

    fn problem_keys(toml_src: &str) -> Vec<String> {
        let (cfg, trust) = parse(toml_src);
        let mut p = Problems::default();
        cfg.validate("login.oidc", &trust, &mut p);
        p.into_vec().into_iter().map(|p| p.key).collect()
    }

    const TRUST: &str = "[[trust]]\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\naudiences = [\"bridge\"]\n";

    #[test]
    fn config_defaults_and_trust_requirement() {
        let base = "[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"bridge\"\nclient_secret_file = \"/s\"\n";
        let (cfg, _) = parse(base);
        assert_eq!(cfg.scopes, ["openid", "profile", "email"]);
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        assert!(problem_keys(&format!("{base}{TRUST}")).is_empty());
        assert_eq!(problem_keys(base), ["login.oidc.issuer"]);
        // Trusted, but not for this client, or not for ID tokens.
        assert_eq!(
            problem_keys(&format!("{base}{}", TRUST.replace("\"bridge\"", "\"api\""))),
            ["login.oidc.issuer"]
        );
        assert_eq!(
            problem_keys(&format!("{base}{TRUST}token_use = \"access\"\n")),
            ["login.oidc.issuer"]
        );
        assert_eq!(
            problem_keys(&format!(
                "{base}{}",
                TRUST.replace("example.com", "example.com/")
            )),
            ["login.oidc.issuer"]
        );
        assert!(!format!("{cfg:?}").contains("/s\""), "{cfg:?}");
    }

    #[test]
    fn bad_settings_name_their_keys() {
        let keys = problem_keys(&format!(
            "[oidc]\nissuer = \"http://idp.example.com\"\nclient_id = \"\"\nclient_secret_file = \"\"\nscopes = [\"profile\", \"a b\"]\nredirect_url = \"https://app.example.com/login\"\ndisplay_name = \" \"\ntimeout = \"2m\"\n{TRUST}"
        ));
        for want in [
            "issuer",
            "client_id",
            "client_secret_file",
            "scopes",
            "redirect_url",
            "display_name",
            "timeout",
        ] {
            assert!(
                keys.contains(&format!("login.oidc.{want}")),
                "{want} missing in {keys:?}"
            );
        }
        assert!(check_callback_path("/auth/callback").is_ok());
        for bad in ["/", "/session", "/{x}", "/a//b", "/*rest", ""] {
            assert!(check_callback_path(bad).is_err(), "{bad}");
        }
        let err = figment::Figment::from(figment::providers::Toml::string("issuer = \"https://a\"\nclient_id = \"c\"\nclient_secret = \"x\"\nclient_secret_file = \"/s\""))
            .extract::<OidcLoginConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
    }
}
