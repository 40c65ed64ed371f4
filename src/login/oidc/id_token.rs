//! What the bridge checks in a verified ID token beyond the verifier's
//! rules, and the identity it reads from it (and from UserInfo).

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::OidcError;
use crate::login::AuthenticatedUser;
use crate::tokens::verify::Claims;

/// A JSON object (claims, a UserInfo response).
pub(super) type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The checks the verifier cannot make for this flow: the token must come
/// from our provider (the verifier trusts others too), name our client, and
/// carry the nonce of this login.
pub(super) fn check_id_token(
    claims: &Claims,
    raw: &JsonObject,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<(), OidcError> {
    if claims.iss != issuer {
        return Err(OidcError::WrongToken("issued by another trusted issuer"));
    }
    if !claims.aud.iter().any(|a| a == client_id) {
        return Err(OidcError::WrongToken("aud does not name our client"));
    }
    // OIDC Core §3.1.3.7: with several audiences, `azp` names the client.
    let azp = raw.get("azp").and_then(serde_json::Value::as_str);
    if azp.is_some_and(|a| a != client_id) || (claims.aud.len() > 1 && azp.is_none()) {
        return Err(OidcError::WrongToken("azp does not name our client"));
    }
    let sent = raw
        .get("nonce")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if sent.is_empty() || !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
        return Err(OidcError::Nonce);
    }
    Ok(())
}

/// The identity of a checked ID token; claims it lacks are taken from the
/// UserInfo response `info`, which must be about the same `sub`.
pub(super) fn user_from(
    claims: &Claims,
    raw: &JsonObject,
    info: Option<&JsonObject>,
) -> Result<AuthenticatedUser, OidcError> {
    let info_text = |name: &str| {
        info.and_then(|i| i.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if info.is_some() && info_text("sub").as_deref() != Some(claims.sub.as_str()) {
        return Err(OidcError::WrongToken("userinfo is about another subject"));
    }
    let username = raw
        .get("preferred_username")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .or_else(|| claims.username.clone())
        .or_else(|| info_text("preferred_username"))
        .unwrap_or_else(|| claims.sub.clone());
    let groups = if claims.groups.is_empty() {
        info.and_then(|i| i.get("groups"))
            .and_then(serde_json::Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        claims.groups.clone()
    };
    Ok(AuthenticatedUser {
        sub: claims.sub.clone(),
        username: Some(username),
        groups,
        email: claims.email.clone().or_else(|| info_text("email")),
        issuer: claims.iss.clone(),
        auth_time: claims
            .auth_time
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or_else(OffsetDateTime::now_utc),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tokens::verify::TokenUse;

    const ISS: &str = "https://idp.example.com";

    fn claims() -> Claims {
        Claims {
            iss: ISS.to_owned(),
            sub: "u-1".to_owned(),
            token_use: TokenUse::Id,
            client_id: None,
            aud: vec!["bridge".to_owned()],
            exp: 2_000_000_000,
            iat: None,
            nbf: None,
            auth_time: Some(1_800_000_000),
            jti: None,
            origin_jti: None,
            username: None,
            groups: vec!["users".to_owned()],
            scopes: vec![],
            email: Some("u@example.test".to_owned()),
        }
    }

    fn raw(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    fn check(c: &Claims, r: &JsonObject, nonce: &str) -> Result<(), OidcError> {
        check_id_token(c, r, ISS, "bridge", nonce)
    }

    #[test]
    fn nonce_must_match_exactly() {
        let c = claims();
        check(&c, &raw(serde_json::json!({"nonce": "n-1"})), "n-1").unwrap();
        for bad in [
            serde_json::json!({"nonce": "n-2"}),
            serde_json::json!({"nonce": "n-1x"}),
            serde_json::json!({"nonce": "N-1"}),
            serde_json::json!({"nonce": ""}),
            serde_json::json!({"nonce": 1}),
            serde_json::json!({}),
        ] {
            assert!(
                matches!(check(&c, &raw(bad.clone()), "n-1"), Err(OidcError::Nonce)),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn token_must_be_ours() {
        let r = raw(serde_json::json!({"nonce": "n"}));
        let mut c = claims();
        c.iss = "https://other.example.com".to_owned();
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let mut c = claims();
        c.aud = vec!["api".to_owned()];
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let mut c = claims();
        c.aud = vec!["bridge".to_owned(), "api".to_owned()];
        assert!(matches!(check(&c, &r, "n"), Err(OidcError::WrongToken(_))));
        let with_azp = raw(serde_json::json!({"nonce": "n", "azp": "bridge"}));
        assert!(check(&c, &with_azp, "n").is_ok());
        let other_azp = raw(serde_json::json!({"nonce": "n", "azp": "api"}));
        assert!(check(&claims(), &other_azp, "n").is_err());
    }

    #[test]
    fn identity_from_the_id_token_then_userinfo() {
        let c = claims();
        let r = raw(serde_json::json!({"preferred_username": "alice"}));
        let u = user_from(&c, &r, None).unwrap();
        assert_eq!(
            (u.sub.as_str(), u.username.as_deref()),
            ("u-1", Some("alice"))
        );
        assert_eq!(u.groups, ["users"]);
        assert_eq!(u.email.as_deref(), Some("u@example.test"));
        assert_eq!(u.issuer, ISS);
        assert_eq!(u.auth_time.unix_timestamp(), 1_800_000_000);
        // Without preferred_username the username is the sub.
        assert_eq!(
            user_from(&c, &raw(serde_json::json!({})), None)
                .unwrap()
                .username
                .as_deref(),
            Some("u-1")
        );

        // Claims the ID token lacks come from userinfo; its own win.
        let mut bare = claims();
        bare.groups.clear();
        bare.email = None;
        let info = raw(serde_json::json!({
            "sub": "u-1", "preferred_username": "bob", "email": "b@example.test",
            "groups": ["admins", 7],
        }));
        let u = user_from(&bare, &raw(serde_json::json!({})), Some(&info)).unwrap();
        assert_eq!(u.username.as_deref(), Some("bob"));
        assert_eq!(u.groups, ["admins"]);
        assert_eq!(u.email.as_deref(), Some("b@example.test"));
        let u = user_from(&c, &r, Some(&info)).unwrap();
        assert_eq!(
            (
                u.username.as_deref().unwrap_or_default(),
                u.groups.as_slice()
            ),
            ("alice", ["users".to_owned()].as_slice())
        );
        // Userinfo about someone else is refused.
        for other in [serde_json::json!({"sub": "u-2"}), serde_json::json!({})] {
            assert!(matches!(
                user_from(&c, &r, Some(&raw(other))),
                Err(OidcError::WrongToken(_))
            ));
        }
    }
}
