//! Logouts reach the PHP sessions of other devices (issue 10, item 6): PHP
//! pages read `$_SESSION` alone, so "log out everywhere" and a family
//! logout must delete the records themselves, on phpredis and on
//! aws-sdk-php's DynamoDB layout.

use std::sync::atomic::Ordering;

use serde_json::Value;
use session_bridge_php::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use session_bridge_php::aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use session_bridge_php::aws_sdk_dynamodb::{Client, Config as DdbConfig};

use crate::common::{Service, harness_env};
use crate::legacy_php::{Bridge, Browser, NEXT, cookie_value, prepare};

/// Whether the PHP app page (`infra/php/page.php`, which reads `$_SESSION`
/// alone) shows this browser signed in.
async fn php_signed_in(bridge: &Bridge, browser: &Browser) -> bool {
    let page = bridge.php(browser, "page.php", &[]).await;
    page["signed_in"].as_bool().unwrap()
}

#[tokio::test]
async fn logging_out_everywhere_logs_other_devices_out_of_php_pages() {
    let bridge = Bridge::start("php");
    let url = bridge.url().to_owned();
    // A and B log in through the bridge; D is another user, logged in by
    // the PHP app and accepted by the bridge.
    let (a, b, d) = (Browser::new(), Browser::new(), Browser::new());
    a.login(&bridge).await;
    let (_, set) = b.login(&bridge).await;
    let b_id = cookie_value(&set, "PHPSESSID").unwrap();
    bridge
        .php(&d, "login.php", &[("user", "88"), ("name", "dora")])
        .await;
    let (status, me, _) = d.get(&format!("{url}/session")).await;
    assert_eq!(status, 200, "{me}");
    for browser in [&a, &b, &d] {
        assert!(php_signed_in(&bridge, browser).await);
    }

    let (status, _) = a.post(&format!("{url}/logout/all"), &url).await;
    assert_eq!(status, 200);

    // Checked before any PHP page runs (a page may write an empty record).
    let b_record = bridge.php_record_exists(&b_id);
    let mut leftovers = 0;
    for browser in [&a, &b] {
        leftovers += usize::from(php_signed_in(&bridge, browser).await);
    }
    assert_eq!(
        (leftovers, b_record),
        (0, false),
        "devices still signed in on PHP pages after logging out everywhere"
    );
    assert!(
        php_signed_in(&bridge, &d).await,
        "other users are untouched"
    );
    // The bridge refuses them too, and a new login works.
    let (status, _, _) = b.get(&format!("{url}/session")).await;
    assert_eq!(status, 401);
    b.login(&bridge).await;
    assert!(php_signed_in(&bridge, &b).await);
}

#[tokio::test]
async fn a_family_logout_ends_the_php_session_of_that_login_only() {
    let bridge = Bridge::start("php_serialize");
    let url = bridge.url().to_owned();
    let (a, b) = (Browser::new(), Browser::new());
    a.login(&bridge).await;
    b.login(&bridge).await;
    // A's SPA holds a bearer token in A's family, and logs out with it
    // alone (no cookies): the family dies, and with it A's PHP session.
    let r = a
        .http
        .post(format!("{url}/token?delivery=body"))
        .header("origin", &url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let a_id = a.cookie(&url, "PHPSESSID").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{url}/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let a_record = bridge.php_record_exists(&a_id);
    let leftovers = usize::from(php_signed_in(&bridge, &a).await);
    assert_eq!(
        (leftovers, a_record),
        (0, false),
        "A's PHP pages after its family logged out"
    );
    assert!(php_signed_in(&bridge, &b).await, "B is another family");
    let (status, _, _) = b.get(&format!("{url}/session")).await;
    assert_eq!(status, 200);
}

/// A bridge whose PHP sessions are aws-sdk-php items in a fresh moto table.
pub(crate) struct DynamoBridge {
    pub(crate) service: Service,
    pub(crate) client: Client,
    pub(crate) table: String,
    _dir: tempfile::TempDir,
}

impl DynamoBridge {
    pub(crate) async fn start() -> DynamoBridge {
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
        DynamoBridge {
            service,
            client,
            table,
            _dir: dir,
        }
    }

    /// The item of PHP session `id`.
    pub(crate) async fn item(
        &self,
        id: &str,
    ) -> Option<std::collections::HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("PHPSESSID_{id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// Whether PHP would read session `id` as signed in: a live item
    /// (`expires` in the future, as aws-sdk-php reads it) whose data holds
    /// `$_SESSION['bridge']`.
    pub(crate) async fn php_signed_in(&self, id: &str) -> bool {
        let Some(item) = self.item(id).await else {
            return false;
        };
        let expires: i64 = item["expires"].as_n().unwrap().parse().unwrap();
        expires > time::OffsetDateTime::now_utc().unix_timestamp()
            && item["data"].as_s().unwrap().contains("bridge|a:5:{")
    }
}

#[tokio::test]
async fn logging_out_everywhere_deletes_other_devices_dynamodb_items() {
    let bridge = DynamoBridge::start().await;
    let url = bridge.service.url.clone();
    let mut ids = Vec::new();
    let browsers = [Browser::new(), Browser::new(), Browser::new()];
    for browser in &browsers {
        let (_, set) = browser.login_at(&url).await;
        ids.push(cookie_value(&set, "PHPSESSID").unwrap());
    }
    for id in &ids {
        assert!(bridge.php_signed_in(id).await);
    }
    // A family logout (the third browser's) ends its item only.
    let (status, _) = browsers[2].post(&format!("{url}/logout"), &url).await;
    assert_eq!(status, 200);
    assert!(!bridge.php_signed_in(&ids[2]).await);
    assert!(bridge.php_signed_in(&ids[1]).await);

    let (status, _) = browsers[0].post(&format!("{url}/logout/all"), &url).await;
    assert_eq!(status, 200);
    let mut leftovers = 0;
    for id in &ids {
        leftovers += usize::from(bridge.php_signed_in(id).await);
    }
    assert_eq!(
        leftovers, 0,
        "items still signed in after logging out everywhere"
    );
    assert!(bridge.item(&ids[1]).await.is_none(), "B's item is deleted");
    // The index item is gone with the sessions it listed.
    let scan = bridge
        .client
        .scan()
        .table_name(&bridge.table)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count(), 0, "{:?}", scan.items());
}
