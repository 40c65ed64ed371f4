//! One trusted issuer as the verifier holds it: its claim rules, its
//! algorithm allowlist with a prebuilt `Validation` per algorithm, and
//! where its keys come from.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use jsonwebtoken::{Algorithm, Validation};

use super::claims::{ClaimRules, ClaimStyle};
use super::config::{TokenUseSetting, VerifyConfig};
use super::error::VerifyError;
use super::keyset::{self, KeySet, Snapshot};
use super::{IssuerKind, LocalKeys, OwnIssuer};
#[cfg(feature = "remote-jwks")]
use {
    super::config::{self, TrustConfig},
    super::error::{VerifierSetupError, VerifyErrorKind},
    super::jwks::{JwksCache, JwksLocation},
    super::keyset::Lookup,
    url::Url,
};

pub(crate) struct Issuer {
    pub(crate) name: Arc<str>,
    pub(crate) kind: IssuerKind,
    pub(crate) allow: Vec<Algorithm>,
    /// One `Validation` per allowed algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    pub(crate) rules: ClaimRules,
    keys: IssuerKeys,
}

enum IssuerKeys {
    Own {
        source: Arc<dyn LocalKeys>,
        cache: ArcSwapOption<Snapshot>,
    },
    #[cfg(feature = "remote-jwks")]
    Remote(Arc<JwksCache>),
}

impl Issuer {
    /// Our own issuer: every asymmetric algorithm, each key pinned to the
    /// `alg` its JWK names.
    pub(crate) fn own(own: OwnIssuer, cfg: &VerifyConfig) -> (String, Self) {
        let rules = ClaimRules {
            style: ClaimStyle::Cognito,
            token_use: TokenUseSetting::Both,
            client_ids: vec![own.client_id],
            audiences: Vec::new(),
            required_groups: Vec::new(),
            required_scopes: Vec::new(),
            leeway: leeway(cfg),
        };
        let allow = keyset::ASYMMETRIC.to_vec();
        let issuer = Self {
            name: Arc::from("self"),
            kind: IssuerKind::Own,
            validations: validations(&allow, &own.issuer, &rules.client_ids, cfg),
            allow,
            rules,
            keys: IssuerKeys::Own {
                source: own.keys,
                cache: ArcSwapOption::empty(),
            },
        };
        (own.issuer, issuer)
    }

    /// The `index`-th `[[tokens.trust]]` entry (already validated).
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn remote(
        trust: &TrustConfig,
        index: usize,
        client: reqwest::Client,
        cfg: &VerifyConfig,
    ) -> Result<(String, Self), VerifierSetupError> {
        let invalid = |field: &str, message: String| VerifierSetupError::InvalidConfig {
            key: format!("tokens.trust[{index}].{field}"),
            message,
        };
        let allow =
            config::parse_algorithms(trust.algorithms()).map_err(|m| invalid("algorithms", m))?;
        let iss = trust.issuer();
        let (kind, location, rules) = match trust {
            TrustConfig::Cognito(c) => {
                let raw = c
                    .jwks_url
                    .clone()
                    .unwrap_or_else(|| format!("{iss}/.well-known/jwks.json"));
                let url = Url::parse(&raw).map_err(|e| invalid("jwks_url", e.to_string()))?;
                let rules = ClaimRules {
                    style: ClaimStyle::Cognito,
                    token_use: c.token_use,
                    client_ids: c.client_ids.clone(),
                    audiences: Vec::new(),
                    required_groups: c.required_groups.clone(),
                    required_scopes: c.required_scopes.clone(),
                    leeway: leeway(cfg),
                };
                (IssuerKind::Cognito, JwksLocation::Direct(url), rules)
            }
            TrustConfig::Oidc(o) => {
                // OIDC Discovery §4: the issuer without its trailing slash.
                let raw = format!(
                    "{}/.well-known/openid-configuration",
                    iss.trim_end_matches('/')
                );
                let url = Url::parse(&raw).map_err(|e| invalid("issuer", e.to_string()))?;
                let rules = ClaimRules {
                    style: ClaimStyle::Oidc,
                    token_use: o.token_use,
                    client_ids: o.client_ids.clone(),
                    audiences: o.audiences.clone(),
                    required_groups: o.required_groups.clone(),
                    required_scopes: o.required_scopes.clone(),
                    leeway: leeway(cfg),
                };
                (IssuerKind::Oidc, JwksLocation::Discovery(url), rules)
            }
        };
        let name: Arc<str> = Arc::from(trust.name());
        // Cognito access tokens carry no `aud`; ID tokens name the app client.
        let auds = if kind == IssuerKind::Oidc {
            &rules.audiences
        } else {
            &rules.client_ids
        };
        let validations = validations(&allow, &iss, auds, cfg);
        let cache = JwksCache::new(
            Arc::clone(&name),
            iss.clone(),
            location,
            allow.clone(),
            client,
            cfg,
        );
        let keys = IssuerKeys::Remote(Arc::new(cache));
        Ok((
            iss,
            Self {
                name,
                kind,
                allow,
                validations,
                rules,
                keys,
            },
        ))
    }

    /// The prebuilt validation for `alg`, if the issuer allows it.
    pub(crate) fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find_map(|(a, v)| (*a == alg).then_some(v))
    }

    /// The remote key cache, for a remote issuer.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn remote_cache(&self) -> Option<&Arc<JwksCache>> {
        match &self.keys {
            IssuerKeys::Remote(cache) => Some(cache),
            IssuerKeys::Own { .. } => None,
        }
    }

    /// The generation of the keys in use now (the ring's, or the count of
    /// successful JWKS fetches): cached verifications made with another one
    /// are not served.
    pub(crate) fn current_generation(&self) -> Option<u64> {
        match &self.keys {
            IssuerKeys::Own { source, .. } => Some(source.generation()),
            #[cfg(feature = "remote-jwks")]
            IssuerKeys::Remote(remote) => remote.current().map(|s| s.generation),
        }
    }

    /// The keys to look `kid` up in: ours (rebuilt when the ring's
    /// generation moved), or the remote cache's, refetched on a miss.
    pub(crate) async fn snapshot(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Snapshot>, VerifyError> {
        #[cfg(not(feature = "remote-jwks"))]
        let _ = (kid, alg);
        match &self.keys {
            IssuerKeys::Own { source, cache } => {
                let generation = source.generation();
                if let Some(s) = cache.load_full().filter(|s| s.generation == generation) {
                    return Ok(s);
                }
                let keys = KeySet::build(&source.jwks().keys, &self.allow, &self.name);
                let snapshot = Arc::new(Snapshot { generation, keys });
                cache.store(Some(Arc::clone(&snapshot)));
                Ok(snapshot)
            }
            #[cfg(feature = "remote-jwks")]
            IssuerKeys::Remote(remote) => {
                let current = remote.current();
                if let Some(s) = &current
                    && !matches!(s.keys.find(kid, alg), Lookup::Missing)
                {
                    return Ok(Arc::clone(s));
                }
                let seen = current.map_or(0, |s| s.generation);
                remote.after_miss(seen).await.ok_or(VerifyError::new(
                    VerifyErrorKind::IssuerUnavailable,
                    "the issuer's keys could not be fetched yet",
                ))
            }
        }
    }
}

fn leeway(cfg: &VerifyConfig) -> i64 {
    i64::try_from(cfg.leeway.as_secs()).unwrap_or(i64::MAX)
}

fn validations(
    allow: &[Algorithm],
    iss: &str,
    auds: &[String],
    cfg: &VerifyConfig,
) -> Vec<(Algorithm, Validation)> {
    allow
        .iter()
        .map(|&alg| {
            let mut v = Validation::new(alg);
            v.leeway = cfg.leeway.as_secs();
            v.validate_nbf = true;
            // `set_issuer` alone would let a token without `iss` through.
            v.set_required_spec_claims(&["exp", "iss", "sub"]);
            v.set_issuer(&[iss]);
            v.set_audience(auds);
            (alg, v)
        })
        .collect()
}
