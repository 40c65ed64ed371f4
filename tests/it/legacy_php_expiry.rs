//! PHP sessions the bridge accepts stay alive while the user is active on
//! bridge routes only, and `GET /session` reports when the record really
//! ends (issue 10, item 6b): phpredis (the key's TTL) and aws-sdk-php's
//! DynamoDB layout (`expires`).

use serde_json::Value;
use session_bridge_php::aws_sdk_dynamodb::types::AttributeValue;

use crate::common::harness_env;
use crate::legacy_php::{Bridge, Browser};
use crate::legacy_php_logout::DynamoBridge;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn redis(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &harness_env("SB_REDIS_URL"), "--raw"])
        .args(args)
        .output()
        .expect("redis-cli (infra/harness.sh installs redis-tools)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ttl(key: &str) -> i64 {
    redis(&["ttl", key]).parse().unwrap()
}

/// `GET /session` as this browser: the reported `credential.expires_at`.
async fn reported_expiry(browser: &Browser, url: &str) -> i64 {
    let (status, me, _) = browser.get(&format!("{url}/session")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["credential"]["kind"], "legacy_session", "{me}");
    me["credential"]["expires_at"].as_i64().unwrap()
}

#[tokio::test]
async fn an_accepted_phpredis_session_is_extended_lazily_and_its_ttl_reported() {
    let bridge = Bridge::start("php");
    let url = bridge.url().to_owned();
    let browser = Browser::new();
    let php = bridge
        .php(&browser, "login.php", &[("user", "61"), ("name", "fay")])
        .await;
    let key = format!("{}{}", bridge.prefix, php["id"].as_str().unwrap());
    // The first request stamps the session: a write, a full lifetime.
    let first = reported_expiry(&browser, &url).await;
    let left = ttl(&key);
    assert!((1435..=1440).contains(&left), "{left}");
    assert!((first - (now() + left)).abs() <= 2, "{first}");

    // Fifteen minutes on bridge routes only: 600 s of the record left. The
    // next bridge request extends it as PHP would, and says so.
    redis(&["expire", &key, "600"]);
    let reported = reported_expiry(&browser, &url).await;
    let left = ttl(&key);
    assert!(left > 1400, "the record was not extended: {left} s left");
    assert!(
        (reported - (now() + left)).abs() <= 2,
        "reported {reported}, the record ends at {}",
        now() + left
    );

    // Lazily: 20 s after an extension nothing is written, and the
    // record's real end is reported.
    redis(&["expire", &key, "1420"]);
    let reported = reported_expiry(&browser, &url).await;
    let left = ttl(&key);
    assert!(left <= 1420, "extended again after 20 s: {left}");
    assert!(
        (reported - (now() + left)).abs() <= 2,
        "reported {reported}, the record ends at {}",
        now() + left
    );
    // And PHP still reads the session.
    let page = bridge.php(&browser, "page.php", &[]).await;
    assert_eq!(page["signed_in"], true, "{page}");
}

#[tokio::test]
async fn an_accepted_dynamodb_session_is_extended_and_its_expires_reported() {
    let bridge = DynamoBridge::start().await;
    let url = bridge.service.url.clone();
    // A PHP-side login, as aws-sdk-php writes it, with 600 s left.
    let id = session_bridge_php::new_session_id();
    let put = |expires: i64| {
        let (client, table, id) = (bridge.client.clone(), bridge.table.clone(), id.clone());
        async move {
            client
                .update_item()
                .table_name(&table)
                .key("id", AttributeValue::S(format!("PHPSESSID_{id}")))
                .update_expression("SET #e = :e")
                .expression_attribute_names("#e", "expires")
                .expression_attribute_values(":e", AttributeValue::N(expires.to_string()))
                .send()
                .await
                .unwrap();
        }
    };
    bridge
        .client
        .put_item()
        .table_name(&bridge.table)
        .item("id", AttributeValue::S(format!("PHPSESSID_{id}")))
        .item(
            "data",
            AttributeValue::S(r#"user_id|i:5;username|s:3:"eve";"#.to_owned()),
        )
        .item("expires", AttributeValue::N((now() + 600).to_string()))
        .send()
        .await
        .unwrap();
    let browser = reqwest::Client::new();
    let session = |id: String| {
        let (browser, url) = (browser.clone(), url.clone());
        async move {
            let r = browser
                .get(format!("{url}/session"))
                .header("cookie", format!("PHPSESSID={id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let me: Value = r.json().await.unwrap();
            me["credential"]["expires_at"].as_i64().unwrap()
        }
    };
    let expires = |id: String| {
        let bridge = &bridge;
        async move {
            let item = bridge.item(&id).await.unwrap();
            item["expires"].as_n().unwrap().parse::<i64>().unwrap()
        }
    };
    // Stamped: written, a full lifetime.
    let reported = session(id.clone()).await;
    let stored = expires(id.clone()).await;
    assert!(stored >= now() + 1430, "{stored}");
    assert!((reported - stored).abs() <= 1, "{reported} vs {stored}");

    // Bridge routes only, until 600 s are left: extended on the next one.
    put(now() + 600).await;
    let reported = session(id.clone()).await;
    let stored = expires(id.clone()).await;
    assert!(
        stored >= now() + 1430,
        "`expires` was not extended: {stored}"
    );
    assert!((reported - stored).abs() <= 1, "{reported} vs {stored}");

    // Lazily: not again 20 s later; the item's own `expires` reported.
    put(now() + 1420).await;
    let reported = session(id.clone()).await;
    let stored = expires(id.clone()).await;
    assert!(stored <= now() + 1420, "extended again: {stored}");
    assert!((reported - stored).abs() <= 1, "{reported} vs {stored}");
}
