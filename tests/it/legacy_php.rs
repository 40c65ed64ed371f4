//! Legacy PHP sessions end to end: `session-bridge serve` with
//! `[legacy_php]` on the harness's Redis, and real PHP 8.2 pages
//! (`SB_PHP_URL`: `php -S` serving `infra/php/`, phpredis's session handler
//! on the same Redis) sharing one browser's cookie jar. Both listen on
//! 127.0.0.1, and cookies ignore ports: the browser sends `PHPSESSID` to
//! both, as it would to one site behind a proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use session_bridge::Identity;
use session_bridge::bridge::BridgeLayer;
use session_bridge::config::{Config, Overrides};
use session_bridge::service::{self, AppState};
use session_bridge::stores::Stores;
use session_bridge::tokens::keys::KeyRing;

use crate::common::{Service, harness_env, run_bin};

pub(crate) const PASSWORD: &str = "alice's legacy password";
const FORMATS: [&str; 3] = ["php", "php_binary", "php_serialize"];

pub(crate) static NEXT: AtomicU32 = AtomicU32::new(1);

/// A bridge configured for the PHP pages' sessions.
pub(crate) struct Bridge {
    pub(crate) service: Service,
    /// phpredis key prefix of this bridge's PHP sessions (unique per test).
    pub(crate) prefix: String,
    format: &'static str,
    _dir: tempfile::TempDir,
}

/// The config: built-in users, memory store, `[legacy_php]` on the
/// harness's Redis with the key prefix and format the PHP pages are told.
fn config(prefix: &str, format: &str) -> String {
    format!(
        r#"
[store]
kind = "memory"
[login]
source = "builtin"
[users]
dev_user = false
[legacy_php]
store = "redis"
format = "{format}"
key_prefix = "{prefix}"
gc_maxlifetime = 1440
[legacy_php.redis]
url = "{redis}"
[legacy_php.login_mapping]
sub_key = "user_id"
username_key = "username"
groups_key = "roles"
"#,
        redis = harness_env("SB_REDIS_URL"),
    )
}

/// Users file, keys and config in a fresh directory; `alice` added through
/// the CLI.
pub(crate) fn prepare(
    format: &'static str,
) -> (
    tempfile::TempDir,
    String,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let prefix = format!("sbit-legacy-{}-{n}:", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "alice");
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, config(&prefix, format)).unwrap();
    (dir, prefix, path, data)
}

fn add_user(data: &std::path::Path, name: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(crate::common::bin())
        .arg("--data-dir")
        .arg(data)
        .args([
            "users",
            "add",
            name,
            "--groups",
            "staff,editors",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "users add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Bridge {
    pub(crate) fn start(format: &'static str) -> Bridge {
        let php = harness_env("SB_PHP_URL");
        assert!(php.starts_with("http://127.0.0.1:"), "{php}");
        let (dir, prefix, config, data) = prepare(format);
        let service = Service::start(
            &[
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        );
        Bridge {
            service,
            prefix,
            format,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.service.url
    }

    /// A PHP page, told this bridge's key prefix and format.
    pub(crate) async fn php(&self, browser: &Browser, page: &str, query: &[(&str, &str)]) -> Value {
        php_page(browser, page, &self.prefix, self.format, query).await
    }

    /// Whether Redis holds PHP session `id`.
    pub(crate) fn php_record_exists(&self, id: &str) -> bool {
        let out = std::process::Command::new("redis-cli")
            .args(["-u", &harness_env("SB_REDIS_URL"), "--raw", "exists"])
            .arg(format!("{}{id}", self.prefix))
            .output()
            .expect("redis-cli (infra/harness.sh installs redis-tools)");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

/// A browser: one cookie jar for the bridge and the PHP pages, no
/// automatic redirects.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    pub(crate) fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Browser { http, jar }
    }

    /// The cookie `name` the browser would send to `url`.
    pub(crate) fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url.parse().unwrap())?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    pub(crate) async fn login(&self, bridge: &Bridge) -> (Value, Vec<String>) {
        self.login_at(bridge.url()).await
    }

    pub(crate) async fn login_at(&self, url: &str) -> (Value, Vec<String>) {
        let r = self
            .http
            .post(format!("{url}/login"))
            .header("origin", url)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let cookies = set_cookies(&r);
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "login: {body}");
        (body, cookies)
    }

    pub(crate) async fn post(&self, url: &str, origin: &str) -> (StatusCode, Vec<String>) {
        let r = self
            .http
            .post(url)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        (r.status(), set_cookies(&r))
    }

    pub(crate) async fn get(&self, url: &str) -> (StatusCode, Value, Vec<String>) {
        let r = self.http.get(url).send().await.unwrap();
        let status = r.status();
        let cookies = set_cookies(&r);
        (status, r.json().await.unwrap_or(Value::Null), cookies)
    }
}

pub(crate) async fn php_page(
    browser: &Browser,
    page: &str,
    prefix: &str,
    format: &str,
    query: &[(&str, &str)],
) -> Value {
    let mut q = vec![("prefix", prefix), ("format", format)];
    q.extend_from_slice(query);
    let url = reqwest::Url::parse_with_params(&format!("{}/{page}", harness_env("SB_PHP_URL")), &q)
        .unwrap();
    let r = browser
        .http
        .get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

pub(crate) fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Set-Cookie` header for cookie `name`.
pub(crate) fn set_cookie<'a>(set: &'a [String], name: &str) -> Option<&'a str> {
    set.iter()
        .map(String::as_str)
        .find(|c| c.starts_with(&format!("{name}=")))
}

pub(crate) fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set_cookie(set, name).map(|c| {
        c[name.len() + 1..]
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned()
    })
}

#[tokio::test]
async fn a_bridge_login_is_seen_by_php_and_php_values_survive_until_logout() {
    for format in FORMATS {
        let bridge = Bridge::start(format);
        let browser = Browser::new();

        // An anonymous PHP session with the app's data (a cart).
        let before = bridge
            .php(
                &browser,
                "write.php",
                &[("key", "cart"), ("value", "apples")],
            )
            .await;
        let anonymous_id = before["id"].as_str().unwrap().to_owned();
        assert!(bridge.php_record_exists(&anonymous_id), "{format}");

        // Login through the bridge: a new PHP session id (never the one
        // the browser had), PHP's plain cookie name, HttpOnly, Lax.
        let (login, set) = browser.login(&bridge).await;
        let sub = login["sub"].as_str().unwrap().to_owned();
        let header = set_cookie(&set, "PHPSESSID").expect("a PHP session cookie");
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax"] {
            assert!(header.contains(attr), "{attr} in {header}");
        }
        assert!(!header.contains("Secure"), "http: {header}");
        assert!(!set.iter().any(|c| c.starts_with("__Host-PHPSESSID")));
        let id = cookie_value(&set, "PHPSESSID").unwrap();
        assert_ne!(id, anonymous_id, "{format}: the id is cycled at login");
        assert!(
            !bridge.php_record_exists(&anonymous_id),
            "{format}: old record deleted"
        );

        // A PHP page sees the bridge's identity, and the cart came along.
        let seen = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(seen["id"], id.as_str());
        let identity = &seen["values"]["bridge"];
        assert_eq!(identity["sub"], sub.as_str(), "{format}: {seen}");
        assert_eq!(identity["username"], "alice");
        assert_eq!(identity["groups"], json!(["staff", "editors"]));
        assert_eq!(identity["iss"], bridge.url());
        assert!(identity["auth_time"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(seen["values"]["cart"], "apples", "{format}: {seen}");

        // A value a PHP page writes survives the bridge writing the record
        // again (a second login: identity rewritten, id cycled, data kept).
        bridge
            .php(
                &browser,
                "write.php",
                &[("key", "note"), ("value", "by php")],
            )
            .await;
        let (_, set) = browser.login(&bridge).await;
        let second = cookie_value(&set, "PHPSESSID").unwrap();
        assert_ne!(second, id);
        let seen = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(seen["id"], second.as_str());
        assert_eq!(seen["values"]["note"], "by php", "{format}: {seen}");
        assert_eq!(seen["values"]["cart"], "apples", "{format}: {seen}");
        assert_eq!(seen["values"]["bridge"]["sub"], sub.as_str());

        // Logout through the bridge ends the PHP session.
        let (status, set) = browser
            .post(&format!("{}/logout", bridge.url()), bridge.url())
            .await;
        assert_eq!(status, 200, "{format}");
        let cleared = set_cookie(&set, "PHPSESSID").expect("PHP cookie cleared");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert!(
            !bridge.php_record_exists(&second),
            "{format}: record deleted"
        );
        assert_eq!(browser.cookie(bridge.url(), "PHPSESSID"), None);
        let after = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(after["values"], json!({}), "{format}: {after}");
        let (status, _, _) = browser.get(&format!("{}/session", bridge.url())).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn a_php_login_is_accepted_by_the_bridge_through_the_mapping() {
    for format in FORMATS {
        let bridge = Bridge::start(format);
        let browser = Browser::new();
        // login.php also stores an object referring to itself, a second
        // occurrence of it and a PHP reference, as real apps do.
        let php = bridge
            .php(&browser, "login.php", &[("user", "42"), ("name", "carol")])
            .await;
        let id = php["id"].as_str().unwrap().to_owned();
        assert_eq!(
            browser.cookie(bridge.url(), "PHPSESSID").as_deref(),
            Some(id.as_str()),
            "the bridge gets PHP's cookie"
        );

        let (status, me, set) = browser.get(&format!("{}/session", bridge.url())).await;
        assert_eq!(status, 200, "{format}: {me}");
        assert_eq!(me["sub"], "42");
        assert_eq!(me["username"], "carol");
        assert_eq!(me["groups"], json!(["staff", "editors"]));
        assert_eq!(me["issuer"], "php");
        assert_eq!(me["credential"]["kind"], "legacy_session");
        assert!(me["expires_in"].as_i64().unwrap() > 1000, "{me}");
        assert!(!me["credential"]["id"].as_str().unwrap().contains(&id));
        assert!(set.is_empty(), "GET /session sets no cookie: {set:?}");

        // The bridge stamped its identity into PHP's session in place; the
        // app's objects and references came through byte-exact.
        let seen = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(seen["id"], id.as_str());
        assert_eq!(seen["values"]["bridge"]["sub"], "42", "{format}: {seen}");
        assert_eq!(seen["values"]["bridge"]["iss"], "php");
        assert_eq!(seen["values"]["user_id"], 42);
        assert_eq!(seen["values"]["cart"], json!({"object": "Cart"}));
        assert_eq!(seen["cart_is_cart"], true, "{format}: {seen}");
        assert_eq!(seen["cart_again_is_cart"], true, "{format}: {seen}");
        assert_eq!(seen["alias_is_reference"], true, "{format}: {seen}");
        let stamped_at = seen["values"]["bridge"]["auth_time"].as_i64().unwrap();

        // PHP writes a value and renames the user; the bridge rewrites its
        // identity in place (read-modify-write) and the value survives.
        bridge
            .php(&browser, "write.php", &[("key", "lang"), ("value", "fr")])
            .await;
        bridge
            .php(
                &browser,
                "write.php",
                &[("key", "username"), ("value", "caroline")],
            )
            .await;
        let (status, me, _) = browser.get(&format!("{}/session", bridge.url())).await;
        assert_eq!(status, 200, "{format}: {me}");
        assert_eq!(me["username"], "caroline");
        let seen = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(seen["id"], id.as_str());
        assert_eq!(seen["values"]["lang"], "fr", "{format}: {seen}");
        assert_eq!(seen["values"]["bridge"]["username"], "caroline", "{seen}");
        assert_eq!(seen["values"]["bridge"]["auth_time"], stamped_at);
        assert_eq!(seen["cart_is_cart"], true, "{format}: {seen}");
        assert_eq!(seen["alias_is_reference"], true, "{format}: {seen}");

        // A PHP login gets tokens like any session.
        let (status, set) = browser
            .post(&format!("{}/token", bridge.url()), bridge.url())
            .await;
        assert_eq!(status, 200, "{format}: token from a PHP login");
        assert!(set_cookie(&set, "sb_token").is_some(), "{set:?}");

        // Logout through the bridge ends the PHP login too.
        let (status, _) = browser
            .post(&format!("{}/logout", bridge.url()), bridge.url())
            .await;
        assert_eq!(status, 200);
        assert!(!bridge.php_record_exists(&id));
        let (status, _, _) = browser.get(&format!("{}/session", bridge.url())).await;
        assert_eq!(status, 401);
        let after = bridge.php(&browser, "read.php", &[]).await;
        assert_eq!(after["values"], json!({}), "{format}: {after}");
    }
}

#[tokio::test]
async fn logging_out_everywhere_ends_php_logins_the_bridge_has_seen() {
    let bridge = Bridge::start("php");
    let (a, b) = (Browser::new(), Browser::new());
    let mut ids = Vec::new();
    for browser in [&a, &b] {
        let php = bridge
            .php(browser, "login.php", &[("user", "77"), ("name", "dan")])
            .await;
        ids.push(php["id"].as_str().unwrap().to_owned());
        let (status, me, _) = browser.get(&format!("{}/session", bridge.url())).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["sub"], "77");
    }
    // A state change by a PHP login needs CSRF proof like any cookie.
    let (status, _) = a
        .post(&format!("{}/logout/all", bridge.url()), "http://evil.test")
        .await;
    assert_eq!(status, 403);
    let (status, _) = a
        .post(&format!("{}/logout/all", bridge.url()), bridge.url())
        .await;
    assert_eq!(status, 200);
    assert!(
        !bridge.php_record_exists(&ids[0]),
        "this browser's PHP session"
    );

    // The other browser's PHP login, which the bridge accepted, is deleted
    // with it, so PHP's pages end it too; the bridge refuses it.
    assert!(!bridge.php_record_exists(&ids[1]));
    let (status, body, _) = b.get(&format!("{}/session", bridge.url())).await;
    assert_eq!(status, 401, "{body}");
    assert!(!bridge.php_record_exists(&ids[1]));
    let after = bridge.php(&b, "read.php", &[]).await;
    assert_eq!(after["values"], json!({}), "{after}");

    // A PHP login after it is accepted.
    let c = Browser::new();
    bridge
        .php(&c, "login.php", &[("user", "77"), ("name", "dan")])
        .await;
    let (status, me, _) = c.get(&format!("{}/session", bridge.url())).await;
    assert_eq!(status, 200, "{me}");
}

async fn whoami(identity: Identity) -> axum::Json<Identity> {
    axum::Json(identity)
}

#[tokio::test]
async fn an_either_route_links_a_bridge_session_and_token_to_a_php_login() {
    // In process: the library layer on an `either` route next to the
    // service's endpoints, one state.
    let (dir, prefix, path, data) = prepare("php_serialize");
    let overrides = Overrides {
        data_dir: Some(data.clone()),
        ..Overrides::default()
    };
    let config = Config::load(Some(&path), &overrides).unwrap();
    let stores = Stores::open(&config).await.unwrap();
    let (keys, _) = KeyRing::load_or_generate(&config.tokens, &data).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (state, _) = AppState::build(&config, stores, Arc::new(keys), url.clone())
        .await
        .unwrap();
    let app = Router::new()
        .route("/either", get(whoami))
        .layer(BridgeLayer::new(state.bridge.clone()))
        .merge(service::router(state));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let browser = Browser::new();
    let php = php_page(
        &browser,
        "login.php",
        &prefix,
        "php_serialize",
        &[("user", "99"), ("name", "erin")],
    )
    .await;
    let id = php["id"].as_str().unwrap().to_owned();
    let (status, me, set) = browser.get(&format!("{url}/either")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "99");
    assert_eq!(me["credential"]["kind"], "legacy_session");
    let family = me["credential"]["id"].as_str().unwrap().to_owned();
    assert!(set_cookie(&set, "sb_session").is_some(), "{set:?}");
    assert!(set_cookie(&set, "sb_token").is_some(), "{set:?}");

    // From now on the bridge's own credentials prove the same user, in the
    // PHP session's token family.
    let (status, me, _) = browser.get(&format!("{url}/either")).await;
    assert_eq!(status, 200);
    assert_eq!(me["credential"]["kind"], "token_cookie");
    assert_eq!(me["sub"], "99");
    let (status, me, _) = browser.get(&format!("{url}/session")).await;
    assert_eq!(status, 200);
    assert_eq!(me["credential"]["kind"], "session");
    assert_eq!(me["credential"]["id"], family.as_str());
    assert_eq!(me["username"], "erin");

    // One logout ends all three.
    let (status, _) = browser.post(&format!("{url}/logout"), &url).await;
    assert_eq!(status, 200);
    let exists = std::process::Command::new("redis-cli")
        .args(["-u", &harness_env("SB_REDIS_URL"), "--raw", "exists"])
        .arg(format!("{prefix}{id}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&exists.stdout).trim(), "0");
    let (status, _, _) = browser.get(&format!("{url}/either")).await;
    assert_eq!(status, 401);
    drop(dir);
}

#[test]
fn legacy_php_settings_are_checked_with_dotted_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[legacy_php]\nformat = \"php_binary\"\ncookie_name = \"a b\"\nidentity_key = \"\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_bin(dir.path(), &["--config", "c.toml", "check-config"], &[]);
    assert_ne!(code, 0);
    for key in [
        "legacy_php.cookie_name",
        "legacy_php.identity_key",
        "legacy_php.redis.url",
    ] {
        assert!(stderr.contains(&format!("`{key}`")), "{key}: {stderr}");
    }
}

/// The DynamoDB layout through the service: items exactly as aws-sdk-php's
/// `SessionHandler` keeps them (`PHPSESSID_<id>`, `data`, `expires`) on
/// moto.
#[tokio::test]
async fn php_sessions_on_dynamodb_follow_logins_and_logouts() {
    use session_bridge_php::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use session_bridge_php::aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    use session_bridge_php::aws_sdk_dynamodb::{Client, Config as DdbConfig};

    let (moto, region) = (harness_env("SB_MOTO_URL"), harness_env("SB_AWS_REGION"));
    let client = Client::from_conf(
        DdbConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .endpoint_url(&moto)
            .build(),
    );
    let table = format!(
        "sb-it-php-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let item = |id: String| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            client
                .get_item()
                .table_name(&table)
                .key("id", AttributeValue::S(format!("PHPSESSID_{id}")))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
        }
    };

    let (dir, _, _, data) = prepare("php");
    let path = dir.path().join("dynamodb.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
kind = "memory"
[login]
source = "builtin"
[users]
dev_user = false
[legacy_php]
store = "dynamodb"
[legacy_php.dynamodb]
table = "{table}"
region = "{region}"
endpoint_url = "{moto}"
"#
        ),
    )
    .unwrap();
    let service = Service::start(
        &[
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    let url = service.url.as_str();

    // Login through the bridge: an item holding the identity, expiring
    // gc_maxlifetime from now.
    let browser = Browser::new();
    let (login, set) = browser.login_at(url).await;
    let id = cookie_value(&set, "PHPSESSID").expect("PHP session cookie");
    let written = item(id.clone()).await.expect("the PHP session item");
    let data_attr = written["data"].as_s().unwrap();
    let sub = login["sub"].as_str().unwrap();
    assert!(data_attr.starts_with("bridge|a:5:{"), "{data_attr}");
    assert!(data_attr.contains(sub), "{data_attr}");
    let expires: i64 = written["expires"].as_n().unwrap().parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now + 1400..=now + 1450).contains(&expires), "{expires}");
    let (status, _) = browser.post(&format!("{url}/logout"), url).await;
    assert_eq!(status, 200);
    assert!(item(id).await.is_none(), "logout deletes the item");

    // A PHP-side login, as aws-sdk-php writes it.
    let php_id = session_bridge_php::new_session_id();
    client
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S(format!("PHPSESSID_{php_id}")))
        .item(
            "data",
            AttributeValue::S(r#"user_id|i:5;username|s:3:"eve";"#.to_owned()),
        )
        .item("expires", AttributeValue::N((now + 600).to_string()))
        .send()
        .await
        .unwrap();
    let me = reqwest::Client::new()
        .get(format!("{url}/session"))
        .header("cookie", format!("PHPSESSID={php_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["sub"], "5");
    assert_eq!(me["credential"]["kind"], "legacy_session");
    let stamped = item(php_id).await.unwrap();
    let data_attr = stamped["data"].as_s().unwrap();
    assert!(
        data_attr.starts_with(r#"user_id|i:5;username|s:3:"eve";bridge|a:5:{"#),
        "{data_attr}"
    );
}
