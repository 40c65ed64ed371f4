//! Tokens from a real Cognito-style IdP: moto's `cognito-idp`, driven over
//! its JSON protocol (moto does not check request signatures).

use serde_json::json;
use session_bridge::tokens::verify::{
    CognitoTrust, IssuerKind, TokenUse, TokenUseSetting, TrustConfig, Verifier, VerifyConfig,
    VerifyErrorKind as K,
};

use crate::common::Moto;

/// A pool with an app client and a user, and the tokens of one login.
struct Pool {
    id: String,
    client_id: String,
    access: String,
    id_token: String,
}

impl Moto {
    async fn pool_with_user(&self, name: &str) -> Pool {
        let pool = self.call("CreateUserPool", json!({"PoolName": name})).await;
        let id = pool["UserPool"]["Id"].as_str().unwrap().to_owned();
        let client = self
            .call(
                "CreateUserPoolClient",
                json!({"UserPoolId": id, "ClientName": format!("{name}-app"),
                    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
            )
            .await;
        let client_id = client["UserPoolClient"]["ClientId"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = json!({"UserPoolId": id, "Username": "alice", "TemporaryPassword": "Temp-Pass-1!",
            "MessageAction": "SUPPRESS"});
        self.call("AdminCreateUser", user).await;
        let password = json!({"UserPoolId": id, "Username": "alice", "Password": "Perm-Pass-1!", "Permanent": true});
        self.call("AdminSetUserPassword", password).await;
        let auth = self
            .call(
                "InitiateAuth",
                json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id,
                    "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Perm-Pass-1!"}}),
            )
            .await;
        let result = &auth["AuthenticationResult"];
        Pool {
            id,
            client_id,
            access: result["AccessToken"].as_str().unwrap().to_owned(),
            id_token: result["IdToken"].as_str().unwrap().to_owned(),
        }
    }

    /// Trust for `pool`: the real AWS issuer, keys from moto.
    fn trust(&self, pool: &Pool, client_ids: &[&str], token_use: TokenUseSetting) -> TrustConfig {
        TrustConfig::Cognito(CognitoTrust {
            name: None,
            region: self.region.clone(),
            user_pool_id: pool.id.clone(),
            jwks_url: Some(format!("{}/{}/.well-known/jwks.json", self.url, pool.id)),
            client_ids: client_ids.iter().map(|s| s.to_string()).collect(),
            token_use,
            algorithms: vec!["RS256".into()],
            required_groups: vec![],
            required_scopes: vec![],
        })
    }
}

async fn verifier(trust: Vec<TrustConfig>) -> Verifier {
    Verifier::start(&VerifyConfig::default(), &trust, None)
        .await
        .unwrap()
}

async fn kind(verifier: &Verifier, token: &str, as_use: Option<TokenUse>) -> K {
    let result = match as_use {
        Some(u) => verifier.verify_as(token, u).await,
        None => verifier.verify(token).await,
    };
    result
        .map(|t| panic!("accepted: {:?}", t.claims))
        .unwrap_err()
        .kind()
}

#[tokio::test]
async fn moto_tokens_verify_with_the_right_pool_client_and_use() {
    let moto = Moto::new();
    let pool = moto.pool_with_user("sb-verify-ok").await;
    let v = verifier(vec![moto.trust(
        &pool,
        &[&pool.client_id],
        TokenUseSetting::Both,
    )])
    .await;

    let access = v.verify_as(&pool.access, TokenUse::Access).await.unwrap();
    assert_eq!(access.issuer_kind, IssuerKind::Cognito);
    assert_eq!(&*access.issuer_name, format!("cognito:{}", pool.id));
    assert_eq!(
        access.claims.iss,
        format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            moto.region, pool.id
        )
    );
    assert_eq!(
        access.claims.client_id.as_deref(),
        Some(pool.client_id.as_str())
    );
    assert_eq!(access.claims.username.as_deref(), Some("alice"));
    assert!(access.claims.origin_jti.is_some());

    let id = v.verify_as(&pool.id_token, TokenUse::Id).await.unwrap();
    assert_eq!(id.claims.aud, std::slice::from_ref(&pool.client_id));
    assert_eq!(id.claims.username.as_deref(), Some("alice"));
    assert_eq!(id.claims.sub, access.claims.sub);

    // The use asked for by the caller, both ways.
    assert_eq!(
        kind(&v, &pool.id_token, Some(TokenUse::Access)).await,
        K::WrongTokenUse
    );
    assert_eq!(
        kind(&v, &pool.access, Some(TokenUse::Id)).await,
        K::WrongTokenUse
    );
}

#[tokio::test]
async fn configured_token_use_is_enforced() {
    let moto = Moto::new();
    let pool = moto.pool_with_user("sb-verify-use").await;
    let only_access = verifier(vec![moto.trust(
        &pool,
        &[&pool.client_id],
        TokenUseSetting::Access,
    )])
    .await;
    only_access.verify(&pool.access).await.unwrap();
    assert_eq!(
        kind(&only_access, &pool.id_token, None).await,
        K::WrongTokenUse
    );
    let only_id = verifier(vec![moto.trust(
        &pool,
        &[&pool.client_id],
        TokenUseSetting::Id,
    )])
    .await;
    only_id.verify(&pool.id_token).await.unwrap();
    assert_eq!(kind(&only_id, &pool.access, None).await, K::WrongTokenUse);
}

#[tokio::test]
async fn another_app_client_is_a_wrong_audience() {
    let moto = Moto::new();
    let pool = moto.pool_with_user("sb-verify-client").await;
    let v = verifier(vec![moto.trust(
        &pool,
        &["some-other-app-client"],
        TokenUseSetting::Both,
    )])
    .await;
    assert_eq!(kind(&v, &pool.access, None).await, K::WrongAudience);
    assert_eq!(kind(&v, &pool.id_token, None).await, K::WrongAudience);
}

#[tokio::test]
async fn another_pool_is_an_untrusted_issuer() {
    // moto signs every pool with one key: only the issuer tells them apart.
    let moto = Moto::new();
    let (a, b) = (
        moto.pool_with_user("sb-verify-a").await,
        moto.pool_with_user("sb-verify-b").await,
    );
    let v = verifier(vec![moto.trust(
        &a,
        &[&a.client_id, &b.client_id],
        TokenUseSetting::Both,
    )])
    .await;
    v.verify(&a.access).await.unwrap();
    assert_eq!(kind(&v, &b.access, None).await, K::UnknownIssuer);
    assert_eq!(kind(&v, &b.id_token, None).await, K::UnknownIssuer);
}

#[tokio::test]
async fn required_groups_and_scopes_apply_to_cognito_tokens() {
    let moto = Moto::new();
    let pool = moto.pool_with_user("sb-verify-groups").await;
    let mut trust = moto.trust(&pool, &[&pool.client_id], TokenUseSetting::Access);
    if let TrustConfig::Cognito(c) = &mut trust {
        c.required_scopes = vec!["aws.cognito.signin.user.admin".into()];
    }
    verifier(vec![trust.clone()])
        .await
        .verify(&pool.access)
        .await
        .unwrap();
    if let TrustConfig::Cognito(c) = &mut trust {
        c.required_groups = vec!["admins".into()];
    }
    assert_eq!(
        kind(&verifier(vec![trust]).await, &pool.access, None).await,
        K::MissingGroup
    );
}
