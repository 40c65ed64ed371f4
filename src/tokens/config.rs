//! `[tokens]`: how the bridge signs its tokens, and which tokens it trusts.
//!
//! ```toml
//! [tokens]
//! algorithm = "RS256"        # or "ES256", "EdDSA"
//! access_ttl = "15m"
//! id_ttl = "1h"
//! client_id = "session-bridge"
//! scope = "openid profile"
//! # keys_file = "/run/secrets/session-bridge/keys.json"
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;
use crate::tokens::verify::{TrustConfig, VerifyConfig};

/// Shortest token lifetime accepted: below this, clock skew between hosts
/// eats a noticeable share of the token's life.
const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest token lifetime accepted: a JWT cannot be recalled, so its life is
/// the window in which a stolen one works (Cognito's own maximum is 1 day).
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Signature algorithm of the keys the bridge generates.
///
/// RS256 is the default because Cognito and API Gateway JWT authorizers use
/// it; ES256 and EdDSA give much smaller tokens and faster signing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    #[default]
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlgorithm {
    /// Every algorithm the bridge can sign with.
    pub const ALL: [Self; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The same algorithm as `jsonwebtoken` names it.
    pub fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    /// Parse a JOSE name; `None` for anything the bridge does not sign with.
    pub fn from_jose(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[tokens]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Algorithm of newly generated keys (default `RS256`). Keys already in
    /// the key ring keep theirs: switching takes effect over two rotations.
    pub algorithm: SigningAlgorithm,
    /// Lifetime of access tokens (default 15 minutes).
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Lifetime of id tokens (default 1 hour).
    #[serde(with = "humantime_serde")]
    pub id_ttl: Duration,
    /// `client_id` claim of our access tokens and `aud` of our id tokens,
    /// what a Cognito-style verifier is configured with (default
    /// `session-bridge`).
    pub client_id: String,
    /// `scope` claim of our access tokens (default `openid profile`).
    pub scope: String,
    /// Key ring file (default `<data_dir>/keys.json`). The environment
    /// variable `SESSION_BRIDGE_KEYS_FILE` wins over this setting.
    pub keys_file: Option<PathBuf>,
    /// Generate a key ring when the file does not exist (default `true`).
    /// Turn it off when several instances share one mounted key file: an
    /// instance with keys of its own would mint tokens its peers reject.
    pub generate_keys: bool,
    /// How often a running service re-reads the key ring file, so that
    /// `session-bridge keys rotate` takes effect without a restart
    /// (default 30 s).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Verifier limits (`[tokens.verify]`).
    pub verify: VerifyConfig,
    /// Trusted external issuers (`[[tokens.trust]]`).
    pub trust: Vec<TrustConfig>,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::default(),
            access_ttl: Duration::from_secs(15 * 60),
            id_ttl: Duration::from_secs(3600),
            client_id: "session-bridge".to_owned(),
            scope: "openid profile".to_owned(),
            keys_file: None,
            generate_keys: true,
            reload_interval: Duration::from_secs(30),
            verify: VerifyConfig::default(),
            trust: Vec::new(),
        }
    }
}

impl TokensConfig {
    /// Record every invalid setting under `prefix` (normally `tokens`).
    pub fn validate(&self, prefix: &str, problems: &mut Problems) {
        for (name, ttl) in [("access_ttl", self.access_ttl), ("id_ttl", self.id_ttl)] {
            if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
                problems.push(
                    format!("{prefix}.{name}"),
                    "must be between 1 minute and 24 hours",
                );
            }
        }
        // Printable ASCII without spaces: the value travels in JSON claims,
        // logs and verifier configuration, where anything else causes grief.
        if self.client_id.is_empty()
            || self.client_id.len() > 128
            || !self.client_id.bytes().all(|b| b.is_ascii_graphic())
        {
            problems.push(
                format!("{prefix}.client_id"),
                "must be 1 to 128 printable ASCII characters without spaces",
            );
        }
        if !is_scope(&self.scope) {
            problems.push(
                format!("{prefix}.scope"),
                "must be space-separated scope tokens (RFC 6749 section 3.3)",
            );
        }
        if self
            .keys_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(format!("{prefix}.keys_file"), "must not be empty when set");
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600))
            .contains(&self.reload_interval)
        {
            problems.push(
                format!("{prefix}.reload_interval"),
                "must be between 1 second and 24 hours",
            );
        }
        self.verify.validate(&format!("{prefix}.verify"), problems);
        TrustConfig::validate_all(&self.trust, &format!("{prefix}.trust"), problems);
    }
}

/// RFC 6749 §3.3: `scope-token *( SP scope-token )`, each token
/// `1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn problems_of(cfg: &TokensConfig) -> Vec<(String, String)> {
        let mut problems = Problems::default();
        cfg.validate("tokens", &mut problems);
        problems
            .into_vec()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems_of(&TokensConfig::default()), vec![]);
    }

    #[test]
    fn parses_a_section_with_humantime_durations() {
        let cfg: TokensConfig = serde_json::from_value(serde_json::json!({
            "algorithm": "EdDSA",
            "access_ttl": "5m",
            "id_ttl": "2h",
            "keys_file": "/run/secrets/keys.json",
        }))
        .unwrap();
        assert_eq!(cfg.algorithm, SigningAlgorithm::EdDSA);
        assert_eq!(cfg.access_ttl, Duration::from_secs(300));
        assert_eq!(cfg.id_ttl, Duration::from_secs(7200));
        assert_eq!(cfg.client_id, "session-bridge");
    }

    #[test]
    fn rejects_unknown_keys_and_algorithms() {
        let unknown = serde_json::from_value::<TokensConfig>(serde_json::json!({ "ttl": "5m" }));
        assert!(unknown.is_err());
        let hs =
            serde_json::from_value::<TokensConfig>(serde_json::json!({ "algorithm": "HS256" }));
        assert!(hs.is_err());
    }

    #[test]
    fn reports_every_bad_setting_with_its_dotted_key() {
        let cfg = TokensConfig {
            access_ttl: Duration::from_secs(10),
            id_ttl: Duration::from_secs(2 * 24 * 3600),
            client_id: "has space".to_owned(),
            scope: "openid  profile".to_owned(),
            keys_file: Some(PathBuf::new()),
            reload_interval: Duration::ZERO,
            ..TokensConfig::default()
        };
        let keys: Vec<String> = problems_of(&cfg).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "tokens.access_ttl",
                "tokens.id_ttl",
                "tokens.client_id",
                "tokens.scope",
                "tokens.keys_file",
                "tokens.reload_interval"
            ]
        );
    }

    #[test]
    fn nested_sections_report_under_the_prefix() {
        let cfg = TokensConfig {
            verify: VerifyConfig {
                leeway: Duration::from_secs(3600),
                ..VerifyConfig::default()
            },
            ..TokensConfig::default()
        };
        let keys: Vec<String> = problems_of(&cfg).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["tokens.verify.leeway"]);
    }
}
