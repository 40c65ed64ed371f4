//! A bridge deployment for end-to-end tests: two service instances sharing
//! one store (Redis or DynamoDB), moto's Cognito as the password IdP, and an
//! in-process axum app that mounts the library layer on the same store and
//! keys (legacy page on sessions, API on tokens).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use session_bridge::Identity;
use session_bridge::bridge::BridgeLayer;
use session_bridge::config::{Config, Overrides, StoreKind};
use session_bridge::service::AppState;
use session_bridge::stores::Stores;
use session_bridge::tokens::keys::KeyRing;

pub use crate::common::{Moto, browser};
use crate::common::{Service, harness_env};

/// The public URL every instance shares (tests send it as `Origin`).
pub const ORIGIN: &str = "http://bridge.test";
pub const PASSWORD: &str = "Perm-Pass-1!";

static NEXT: AtomicU32 = AtomicU32::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    DynamoDb,
}

pub struct Env {
    pub a: Service,
    pub b: Service,
    /// The in-process app: `/legacy` (session), `/api` (token), `/either`,
    /// `/shadow` (enforce session, evaluate token), `/metrics`.
    pub app: String,
    pub pool_id: String,
    pub client_id: String,
    pub shadow_rule: String,
    pub backend: Backend,
    pub redis_db: u32,
    pub tables: (String, String),
    _dir: tempfile::TempDir,
}

impl Moto {
    /// A pool, an app client allowing USER_PASSWORD_AUTH, users alice and bob.
    pub async fn pool(&self, name: &str) -> (String, String) {
        let pool = self.call("CreateUserPool", json!({"PoolName": name})).await;
        let id = pool["UserPool"]["Id"].as_str().unwrap().to_owned();
        let client = self
            .call(
                "CreateUserPoolClient",
                json!({"UserPoolId": id, "ClientName": "bridge", "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}),
            )
            .await;
        let client_id = client["UserPoolClient"]["ClientId"]
            .as_str()
            .unwrap()
            .to_owned();
        for user in ["alice", "bob"] {
            self.call(
                "AdminCreateUser",
                json!({"UserPoolId": id, "Username": user, "TemporaryPassword": "Temp-Pass-1!", "MessageAction": "SUPPRESS"}),
            )
            .await;
            self.call(
                "AdminSetUserPassword",
                json!({"UserPoolId": id, "Username": user, "Password": PASSWORD, "Permanent": true}),
            )
            .await;
        }
        (id, client_id)
    }

    /// Tokens of a direct login at the IdP (as another app would get them).
    pub async fn initiate_auth(&self, client_id: &str, user: &str) -> (String, String) {
        let auth = self
            .call(
                "InitiateAuth",
                json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id,
                    "AuthParameters": {"USERNAME": user, "PASSWORD": PASSWORD}}),
            )
            .await;
        let r = &auth["AuthenticationResult"];
        (
            r["AccessToken"].as_str().unwrap().to_owned(),
            r["IdToken"].as_str().unwrap().to_owned(),
        )
    }
}

async fn whoami(identity: Identity) -> axum::Json<Identity> {
    axum::Json(identity)
}

impl Env {
    pub async fn start(backend: Backend) -> Env {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let moto = Moto::new();
        let moto_url = harness_env("SB_MOTO_URL");
        let region = harness_env("SB_AWS_REGION");
        let (pool_id, client_id) = moto.pool(&format!("bridge-{id}")).await;
        let dir = tempfile::tempdir().unwrap();
        let shadow_rule = format!("shadow-{id}");
        // Redis: one logical database per environment, so "nothing was
        // created" can be checked by counting keys.
        let redis_db = 1 + (n % 15);
        let tables = (
            format!("sb-it-{id}-sessions"),
            format!("sb-it-{id}-revocation"),
        );
        let store = match backend {
            Backend::Redis => format!(
                "[store]\nkind = \"redis\"\n[store.redis]\nurl = \"{}/{redis_db}\"\n",
                harness_env("SB_REDIS_URL")
            ),
            Backend::DynamoDb => format!(
                "[store]\nkind = \"dynamodb\"\n[store.dynamodb]\nregion = \"{region}\"\nendpoint_url = \"{moto_url}\"\nsessions_table = \"{}\"\nrevocation_table = \"{}\"\n",
                tables.0, tables.1
            ),
        };
        let config = format!(
            r#"public_url = "{ORIGIN}"
{store}
[tokens]
keys_file = "{keys}"

[[tokens.trust]]
kind = "cognito"
region = "{region}"
user_pool_id = "{pool_id}"
jwks_url = "{moto_url}/{pool_id}/.well-known/jwks.json"
client_ids = ["{client_id}"]

[login]
source = "cognito"
[login.cognito]
region = "{region}"
user_pool_id = "{pool_id}"
client_id = "{client_id}"
endpoint_url = "{moto_url}"

[users]
dev_user = false

[policy]
default = "either"
[[policy.routes]]
path = "/legacy"
mode = "session"
[[policy.routes]]
path = "/api"
mode = "token"
[[policy.routes]]
path = "/shadow"
mode = "shadow"
enforce = "session"
evaluate = "token"
name = "{shadow_rule}"
[[policy.routes]]
path = "/metrics"
mode = "public"
"#,
            keys = dir.path().join("keys.json").display(),
        );
        // The OIDC provider sends the browser back to instance A (behind a
        // load balancer it would be the public URL).
        let a_port = crate::common::free_port();
        let oidc = harness_env("SB_OIDC_URL");
        let secret = dir.path().join("oidc-secret");
        std::fs::write(&secret, "sb-bridge-secret\n").unwrap();
        let config = format!(
            r#"{config}
[login.oidc]
issuer = "{oidc}"
client_id = "sb-bridge"
client_secret_file = "{secret}"
redirect_url = "http://127.0.0.1:{a_port}/callback"

[[tokens.trust]]
kind = "oidc"
issuer = "{oidc}"
audiences = ["sb-bridge"]
"#,
            secret = secret.display()
        );
        let config_path = dir.path().join("bridge.toml");
        std::fs::write(&config_path, config).unwrap();
        let aws = [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", region.as_str()),
        ];
        if backend == Backend::DynamoDb {
            let (code, out, err) = crate::common::run_bin(
                dir.path(),
                &[
                    "--config",
                    config_path.to_str().unwrap(),
                    "dynamodb",
                    "create-tables",
                ],
                &aws,
            );
            assert_eq!(code, 0, "create-tables: {out}{err}");
        }
        let data = |name: &str| -> PathBuf { dir.path().join(name) };
        let cfg = config_path.to_str().unwrap().to_owned();
        let a_data = data("a");
        let a = Service::start_on(
            &format!("127.0.0.1:{a_port}"),
            &["--config", &cfg, "--data-dir", a_data.to_str().unwrap()],
            &aws,
        );
        let b_data = data("b");
        let b = Service::start(
            &["--config", &cfg, "--data-dir", b_data.to_str().unwrap()],
            &aws,
        );

        // The in-process app: same config, same store, same keys.
        let (config, _) = (
            Config::load(Some(&config_path), &Overrides::default()).unwrap(),
            (),
        );
        let stores = match backend {
            Backend::Redis => Stores::open(&config).await.unwrap(),
            Backend::DynamoDb => dynamodb_stores(&config, &moto_url, &region),
        };
        let (keys, generated) = KeyRing::load_or_generate(&config.tokens, dir.path()).unwrap();
        assert!(!generated, "the app must share the instances' keys");
        let (state, _) = AppState::build(&config, stores, Arc::new(keys), ORIGIN.to_owned())
            .await
            .unwrap();
        let metrics = state.metrics.clone();
        let router = Router::new()
            .route("/legacy", get(whoami))
            .route("/api", get(whoami))
            .route("/either", get(whoami).post(whoami))
            .route("/shadow", get(whoami))
            .route("/metrics", get(move || async move { metrics.render() }))
            .layer(BridgeLayer::new(state.bridge.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        assert_eq!(
            state.stores.kind,
            if backend == Backend::Redis {
                StoreKind::Redis
            } else {
                StoreKind::DynamoDb
            }
        );
        Env {
            a,
            b,
            app,
            pool_id,
            client_id,
            shadow_rule,
            backend,
            redis_db,
            tables,
            _dir: dir,
        }
    }

    /// How many sessions the store holds.
    pub async fn session_count(&self) -> usize {
        match self.backend {
            Backend::Redis => {
                // Sessions are bare ids; revocation keys carry the `sb:` prefix.
                let url = format!("{}/{}", harness_env("SB_REDIS_URL"), self.redis_db);
                let out = std::process::Command::new("redis-cli")
                    .args(["-u", &url, "--scan"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|k| !k.starts_with("{sb:}") && !k.starts_with("sb:"))
                    .count()
            }
            Backend::DynamoDb => {
                let out = std::process::Command::new(harness_env("SB_PYTHON"))
                    .args([
                        "-c",
                        "import boto3,sys; c=boto3.client('dynamodb',endpoint_url=sys.argv[1],region_name=sys.argv[2],aws_access_key_id='test',aws_secret_access_key='test'); print(c.scan(TableName=sys.argv[3],Select='COUNT')['Count'])",
                        &harness_env("SB_MOTO_URL"),
                        &harness_env("SB_AWS_REGION"),
                        &self.tables.0,
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            }
        }
    }

    /// The in-process app's counter value for `needle` (a metric line prefix).
    pub async fn metric(&self, needle: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.app))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn dynamodb_stores(config: &Config, moto_url: &str, region: &str) -> Stores {
    use session_bridge_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use session_bridge_dynamodb::aws_sdk_dynamodb::{Client, Config as DdbConfig};
    use session_bridge_dynamodb::{DynamoDbStore, TableNames};
    let conf = DdbConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(moto_url)
        .build();
    let tables = TableNames {
        sessions: config.store.dynamodb.sessions_table.clone(),
        revocation: config.store.dynamodb.revocation_table.clone(),
    };
    let store = DynamoDbStore::new(Client::from_conf(conf), tables);
    Stores {
        kind: StoreKind::DynamoDb,
        sessions: Arc::new(store.clone()),
        revocation: Arc::new(store),
    }
}

/// Log `user` in through `service` with a JSON body; returns the CSRF token.
pub async fn login(client: &reqwest::Client, service: &str, user: &str) -> Value {
    let r = client
        .post(format!("{service}/login"))
        .header("origin", ORIGIN)
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "login as {user}: {body}");
    body
}
