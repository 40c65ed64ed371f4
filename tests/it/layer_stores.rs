//! The library's in-process route tests (`route_tests!`) on the live stores,
//! and the store reads a request costs, counted by Redis itself.

use std::sync::Arc;
use std::time::Duration;

use session_bridge_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use session_bridge_dynamodb::aws_sdk_dynamodb::{Client, Config};
use session_bridge_dynamodb::{DynamoDbStore, TableNames, create_tables};
use session_bridge_redis::fred::prelude::ClientLike as _;
use session_bridge_redis::fred::types::InfoKind;
use session_bridge_redis::fred::types::config::Config as RedisConfig;
use session_bridge_redis::{RedisStore, recommended_builder};

use crate::common::harness_env;

fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

async fn redis_store(url: &str) -> RedisStore {
    let config = RedisConfig::from_url(url).expect("redis url");
    let pool = recommended_builder(config, Duration::from_secs(2))
        .build_pool(2)
        .expect("build pool");
    pool.init().await.expect("connect to redis");
    RedisStore::new(pool).with_key_prefix(format!("{}:", unique("sblayer")))
}

async fn dynamodb_store() -> DynamoDbStore {
    let region = std::env::var("SB_AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(harness_env("SB_MOTO_URL"))
        .build();
    let client = Client::from_conf(config);
    let id = unique("layer");
    let tables = TableNames {
        sessions: format!("{id}-sessions"),
        revocation: format!("{id}-revocation"),
    };
    create_tables(&client, &tables)
        .await
        .expect("create tables");
    DynamoDbStore::new(client, tables)
}

mod redis {
    crate::route_tests!(async {
        super::redis_store(&crate::common::harness_env("SB_REDIS_URL")).await
    });
}

mod dynamodb {
    crate::route_tests!(async { super::dynamodb_store().await });
}

/// `GET` calls Redis counted since it started.
async fn gets(client: &Client2) -> u64 {
    let info: String = client
        .info(Some(InfoKind::CommandStats))
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

type Client2 = session_bridge_redis::fred::clients::Client;

/// A session on Redis (revocation state elsewhere, so only record reads
/// are counted): the handler's `Session` reads and writes the app's data
/// without a second read of the record.
#[tokio::test]
async fn a_session_request_reads_its_record_once_by_redis_commandstats() {
    use crate::common::route_tests::{Jar, ORIGIN, app, send};
    let redis = crate::common::OwnRedis::start();
    let sessions = redis_store(&redis.url()).await;
    let counter = Client2::new(
        RedisConfig::from_url(&redis.url()).unwrap(),
        None,
        None,
        None,
    );
    counter.init().await.unwrap();
    let bridge = session_bridge::bridge::Bridge::builder()
        .stores(
            Arc::new(sessions),
            Arc::new(session_bridge_store::MemoryStore::default()),
        )
        .keys(Arc::new(
            session_bridge::tokens::keys::KeyRing::in_memory(
                session_bridge::tokens::config::SigningAlgorithm::ES256,
            )
            .unwrap(),
        ))
        .issuer(ORIGIN)
        .route("/account", session_bridge::bridge::Mode::Session)
        .default_mode(session_bridge::bridge::Mode::Public)
        .build()
        .unwrap();
    let app = app(bridge);
    let mut jar = Jar::default();
    send(&app, &mut jar, "POST", "/cart/apple", None).await;
    send(&app, &mut jar, "POST", "/login/frank", None).await;
    let mut per_request = Vec::new();
    for (method, uri) in [
        ("GET", "/account"),
        ("GET", "/cart"),
        ("POST", "/cart/fig"),
        ("GET", "/cart"),
    ] {
        let before = gets(&counter).await;
        let r = send(&app, &mut jar, method, uri, None).await;
        assert_eq!(r.status, axum::http::StatusCode::OK, "{uri}: {}", r.body);
        per_request.push(gets(&counter).await - before);
    }
    // The INFO call itself is not a GET; each request read its record once.
    assert_eq!(per_request, [1, 1, 1, 1], "GETs per request");
}
