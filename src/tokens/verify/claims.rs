//! Claims: typed parsing (wrong types are `malformed`, before any trust is
//! placed in them) and the issuer's rules (token use, app client, groups,
//! scopes, times), applied after the signature verified.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::TokenUse;
use super::config::TokenUseSetting;
use super::error::{VerifyError, VerifyErrorKind};

/// The claims of a verified token, typed. Cognito and OIDC spellings are
/// merged: `username` is `username`, `cognito:username` or
/// `preferred_username`; `groups` is `cognito:groups` or `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Claims {
    /// `iss`, exactly as in the token.
    pub iss: String,
    /// `sub`: the principal.
    pub sub: String,
    /// Access or ID token (`token_use`, or for OIDC the `at+jwt` header type).
    pub token_use: TokenUse,
    /// `client_id` (access tokens), or `azp` when there is no `client_id`.
    pub client_id: Option<String>,
    /// `aud`, as a list (empty when absent).
    pub aud: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub exp: i64,
    /// `iat`, seconds since the epoch.
    pub iat: Option<i64>,
    /// `nbf`, seconds since the epoch.
    pub nbf: Option<i64>,
    /// `auth_time`: when the user authenticated, seconds since the epoch.
    pub auth_time: Option<i64>,
    /// `jti`: this token's id.
    pub jti: Option<String>,
    /// `origin_jti`: the token family (Cognito; our session family).
    pub origin_jti: Option<String>,
    /// `username`, `cognito:username` or `preferred_username`.
    pub username: Option<String>,
    /// `cognito:groups` or `groups` (empty when absent).
    pub groups: Vec<String>,
    /// `scope`, split on spaces (empty when absent).
    pub scopes: Vec<String>,
    /// `email`.
    pub email: Option<String>,
}

/// The payload as sent, before any rule: every claim optional so that an
/// absent claim is told apart (`missing_claim`) from a wrongly typed one
/// (a parse error: `malformed`).
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    pub(crate) iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default, deserialize_with = "audience")]
    aud: Option<Vec<String>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    auth_time: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    origin_jti: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default, rename = "cognito:username")]
    cognito_username: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    cognito_groups: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl RawClaims {
    /// Parse an untrusted payload. serde_json bounds nesting depth, and the
    /// payload size is bounded by the token size limit.
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, VerifyError> {
        if !super::header::is_json_object(payload) {
            return Err(VerifyError::malformed("claims are not a JSON object"));
        }
        serde_json::from_slice(payload).map_err(|_| {
            VerifyError::malformed("claims are not a JSON object of the expected types")
        })
    }
}

/// How an issuer names the app client and the token use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimStyle {
    /// Cognito and our own tokens: `token_use` required; `client_id` for
    /// access tokens, `aud` for ID tokens.
    Cognito,
    /// OIDC / RFC 9068: `aud` names the API; `client_id`/`azp` the client.
    #[cfg_attr(not(feature = "remote-jwks"), allow(dead_code))]
    Oidc,
}

/// The claim rules of one issuer.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) style: ClaimStyle,
    pub(crate) token_use: TokenUseSetting,
    /// Cognito style: accepted app clients. OIDC: optional client filter.
    pub(crate) client_ids: Vec<String>,
    /// OIDC only: accepted `aud` values.
    pub(crate) audiences: Vec<String>,
    pub(crate) required_groups: Vec<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) leeway: i64,
}

impl ClaimRules {
    /// Apply the rules to the claims of a token whose signature verified.
    pub(crate) fn check(
        &self,
        raw: RawClaims,
        at_jwt: bool,
        expect: Option<TokenUse>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        let exp = raw.exp.ok_or(VerifyError::missing("exp is required"))?;
        if exp.saturating_add(self.leeway) < now {
            return Err(VerifyError::new(
                VerifyErrorKind::Expired,
                "token has expired",
            ));
        }
        let horizon = now.saturating_add(self.leeway);
        if raw.nbf.is_some_and(|nbf| nbf > horizon) {
            return Err(VerifyError::new(
                VerifyErrorKind::NotYetValid,
                "token is not valid yet (nbf)",
            ));
        }
        if raw.iat.is_some_and(|iat| iat > horizon) {
            return Err(VerifyError::new(
                VerifyErrorKind::NotYetValid,
                "token was issued in the future (iat)",
            ));
        }
        let iss = raw.iss.ok_or(VerifyError::missing("iss is required"))?;
        // An empty or blank `sub` names nobody: a session or identity headers
        // built on it would merge every such token into one anonymous user.
        let sub = raw
            .sub
            .filter(|sub| !sub.trim().is_empty())
            .ok_or(VerifyError::missing(
                "sub is required and must not be blank",
            ))?;

        let token_use = match (raw.token_use.as_deref(), self.style) {
            (Some("access"), _) => TokenUse::Access,
            (Some("id"), _) => TokenUse::Id,
            (Some(_), _) => {
                return Err(VerifyError::new(
                    VerifyErrorKind::WrongTokenUse,
                    "unknown token_use",
                ));
            }
            (None, ClaimStyle::Cognito) => {
                return Err(VerifyError::missing("token_use is required"));
            }
            (None, ClaimStyle::Oidc) if at_jwt => TokenUse::Access,
            (None, ClaimStyle::Oidc) => TokenUse::Id,
        };
        if !self.token_use.allows(token_use) || expect.is_some_and(|e| e != token_use) {
            return Err(VerifyError::new(
                VerifyErrorKind::WrongTokenUse,
                "token use not accepted here",
            ));
        }

        let aud = raw.aud.unwrap_or_default();
        let client_id = raw.client_id.or(raw.azp);
        match (self.style, token_use) {
            (ClaimStyle::Cognito, TokenUse::Access) => {
                let id = client_id
                    .as_deref()
                    .ok_or(VerifyError::missing("client_id is required"))?;
                if !self.client_ids.iter().any(|c| c == id) {
                    return Err(wrong_audience("client_id is not an accepted app client"));
                }
            }
            (ClaimStyle::Cognito, TokenUse::Id) => {
                if aud.is_empty() {
                    return Err(VerifyError::missing("aud is required"));
                }
                if !aud.iter().any(|a| self.client_ids.contains(a)) {
                    return Err(wrong_audience("aud is not an accepted app client"));
                }
            }
            (ClaimStyle::Oidc, _) => {
                if aud.is_empty() {
                    return Err(VerifyError::missing("aud is required"));
                }
                if !aud.iter().any(|a| self.audiences.contains(a)) {
                    return Err(wrong_audience("aud is not an accepted audience"));
                }
                if !self.client_ids.is_empty()
                    && !client_id
                        .as_ref()
                        .is_some_and(|id| self.client_ids.contains(id))
                {
                    return Err(wrong_audience("client_id is not an accepted client"));
                }
            }
        }

        let groups = raw.cognito_groups.or(raw.groups).unwrap_or_default();
        if !self.required_groups.iter().all(|g| groups.contains(g)) {
            return Err(VerifyError::new(
                VerifyErrorKind::MissingGroup,
                "a required group is absent",
            ));
        }
        let scopes: Vec<String> = raw
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        if !self.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(VerifyError::new(
                VerifyErrorKind::InsufficientScope,
                "a required scope is absent",
            ));
        }

        Ok(Claims {
            iss,
            sub,
            token_use,
            client_id,
            aud,
            exp,
            iat: raw.iat,
            nbf: raw.nbf,
            auth_time: raw.auth_time,
            jti: raw.jti,
            origin_jti: raw.origin_jti,
            username: raw
                .username
                .or(raw.cognito_username)
                .or(raw.preferred_username),
            groups,
            scopes,
            email: raw.email,
        })
    }
}

fn wrong_audience(detail: &'static str) -> VerifyError {
    VerifyError::new(VerifyErrorKind::WrongAudience, detail)
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => None,
        Some(Aud::One(a)) => Some(vec![a]),
        Some(Aud::Many(a)) => Some(a),
    })
}

/// A NumericDate: a JSON number of seconds, possibly fractional (floored),
/// never negative; strings, non-finite or out-of-range values are errors.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds since the epoch")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("date out of range"))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v < 0 {
                Err(E::custom("negative date"))
            } else {
                Ok(Some(v))
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // 2^62: far beyond any real date, and exactly representable.
            if v.is_finite() && (0.0..4.611_686_018_427_388e18).contains(&v) {
                Ok(Some(v.floor() as i64))
            } else {
                Err(E::custom("date out of range"))
            }
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn rules(style: ClaimStyle) -> ClaimRules {
        ClaimRules {
            style,
            token_use: TokenUseSetting::Both,
            client_ids: vec!["app".into()],
            audiences: vec!["urn:api".into()],
            required_groups: vec![],
            required_scopes: vec![],
            leeway: 30,
        }
    }

    fn check(rules: &ClaimRules, json: serde_json::Value) -> Result<Claims, VerifyErrorKind> {
        let raw = RawClaims::parse(json.to_string().as_bytes()).map_err(|e| e.kind())?;
        rules.check(raw, false, None, NOW).map_err(|e| e.kind())
    }

    fn access() -> serde_json::Value {
        serde_json::json!({"iss": "i", "sub": "s", "exp": NOW + 60, "iat": NOW, "token_use": "access",
            "client_id": "app", "scope": "openid profile", "cognito:groups": ["admin"], "username": "u"})
    }

    #[test]
    fn cognito_access_token_passes_and_is_typed() {
        let c = check(&rules(ClaimStyle::Cognito), access()).unwrap();
        assert_eq!(c.token_use, TokenUse::Access);
        assert_eq!(c.scopes, ["openid", "profile"]);
        assert_eq!(c.groups, ["admin"]);
        assert_eq!(c.username.as_deref(), Some("u"));
    }

    #[test]
    fn time_rules_with_leeway() {
        let r = rules(ClaimStyle::Cognito);
        let with = |k: &str, v: serde_json::Value| {
            let mut j = access();
            j[k] = v;
            check(&r, j)
        };
        assert!(with("exp", (NOW - 29).into()).is_ok());
        assert_eq!(
            with("exp", (NOW - 31).into()).unwrap_err(),
            VerifyErrorKind::Expired
        );
        assert_eq!(
            with("nbf", (NOW + 31).into()).unwrap_err(),
            VerifyErrorKind::NotYetValid
        );
        assert_eq!(
            with("iat", (NOW + 31).into()).unwrap_err(),
            VerifyErrorKind::NotYetValid
        );
        assert!(with("iat", (NOW as f64 + 0.5).into()).is_ok());
        assert_eq!(
            with("exp", serde_json::Value::Null).unwrap_err(),
            VerifyErrorKind::MissingClaim
        );
    }

    #[test]
    fn blank_sub_is_refused() {
        for style in [ClaimStyle::Cognito, ClaimStyle::Oidc] {
            let mut r = rules(style);
            r.audiences.push("app".into());
            for blank in ["", " ", "\t\n"] {
                let mut j = access();
                j["sub"] = blank.into();
                j["aud"] = "app".into();
                assert_eq!(
                    check(&r, j).unwrap_err(),
                    VerifyErrorKind::MissingClaim,
                    "{style:?} sub={blank:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_types_are_malformed() {
        let r = rules(ClaimStyle::Cognito);
        for (k, v) in [
            ("exp", serde_json::json!("1800000060")),
            ("exp", serde_json::json!(-1)),
            ("exp", serde_json::json!(1e300)),
            ("exp", serde_json::json!(u64::MAX)),
            ("sub", serde_json::json!(42)),
            ("cognito:groups", serde_json::json!("admin")),
            ("aud", serde_json::json!({"a": 1})),
            ("scope", serde_json::json!(["a"])),
            ("iss", serde_json::json!(["i"])),
        ] {
            let mut j = access();
            j[k] = v.clone();
            assert_eq!(
                check(&r, j).unwrap_err(),
                VerifyErrorKind::Malformed,
                "{k}={v}"
            );
        }
        let overflow = br#"{"iss":"i","exp":1e400}"#;
        assert_eq!(
            RawClaims::parse(overflow).err().map(|e| e.kind()),
            Some(VerifyErrorKind::Malformed)
        );
        assert!(RawClaims::parse(br#"["i","s"]"#).is_err());
        let deep = format!(r#"{{"x":{}}}"#, "[".repeat(10_000));
        assert!(RawClaims::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn app_client_and_token_use() {
        let r = rules(ClaimStyle::Cognito);
        let mut j = access();
        j["client_id"] = "other".into();
        assert_eq!(check(&r, j).unwrap_err(), VerifyErrorKind::WrongAudience);
        let mut j = access();
        j["token_use"] = "id".into();
        assert_eq!(
            check(&r, j.clone()).unwrap_err(),
            VerifyErrorKind::MissingClaim
        );
        j["aud"] = "app".into();
        assert_eq!(check(&r, j.clone()).unwrap().token_use, TokenUse::Id);
        let raw = RawClaims::parse(j.to_string().as_bytes()).unwrap();
        let err = r
            .check(raw, false, Some(TokenUse::Access), NOW)
            .unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::WrongTokenUse);
        let only_access = ClaimRules {
            token_use: TokenUseSetting::Access,
            ..r
        };
        assert_eq!(
            check(&only_access, j).unwrap_err(),
            VerifyErrorKind::WrongTokenUse
        );
    }

    #[test]
    fn oidc_audience_and_typ() {
        let r = ClaimRules {
            client_ids: vec![],
            ..rules(ClaimStyle::Oidc)
        };
        let j = serde_json::json!({"iss": "i", "sub": "s", "exp": NOW + 60, "aud": ["x", "urn:api"], "client_id": "c"});
        let raw = RawClaims::parse(j.to_string().as_bytes()).unwrap();
        assert_eq!(
            r.check(raw, true, None, NOW).unwrap().token_use,
            TokenUse::Access
        );
        assert_eq!(check(&r, j.clone()).unwrap().token_use, TokenUse::Id);
        let filtered = ClaimRules {
            client_ids: vec!["other".into()],
            ..rules(ClaimStyle::Oidc)
        };
        assert_eq!(
            check(&filtered, j).unwrap_err(),
            VerifyErrorKind::WrongAudience
        );
    }

    #[test]
    fn required_groups_and_scopes() {
        let r = ClaimRules {
            required_groups: vec!["ops".into()],
            ..rules(ClaimStyle::Cognito)
        };
        assert_eq!(
            check(&r, access()).unwrap_err(),
            VerifyErrorKind::MissingGroup
        );
        let r = ClaimRules {
            required_scopes: vec!["email".into()],
            ..rules(ClaimStyle::Cognito)
        };
        assert_eq!(
            check(&r, access()).unwrap_err(),
            VerifyErrorKind::InsufficientScope
        );
    }
}
