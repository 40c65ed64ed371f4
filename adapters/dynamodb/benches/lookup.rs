//! Session load and revocation lookups through the store, against a raw
//! consistent `GetItem` of the same item on the same server in the same run.
//!
//! ```sh
//! . infra/harness.sh && cargo bench -p session-bridge-dynamodb --bench lookup
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use session_bridge_conformance::{RevocationStore, SessionStore, identity_only_record, unique};
use session_bridge_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use session_bridge_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
use session_bridge_dynamodb::aws_sdk_dynamodb::{Client, Config};
use session_bridge_dynamodb::{
    DynamoDbStore, TableNames, create_tables, recommended_retries, recommended_timeouts,
};
use time::OffsetDateTime;

fn lookups(c: &mut Criterion) {
    let endpoint = std::env::var("SB_MOTO_URL")
        .expect("SB_MOTO_URL is not set: source infra/harness.sh first");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .timeout_config(recommended_timeouts(Duration::from_secs(2)))
        .retry_config(recommended_retries())
        .build();
    let client = Client::from_conf(config);
    let id = unique("bench");
    let tables = TableNames {
        sessions: format!("{id}-sessions"),
        revocation: format!("{id}-revocation"),
    };
    let (store, session, user, jti) = rt.block_on(async {
        create_tables(&client, &tables).await.unwrap();
        let store = DynamoDbStore::new(client.clone(), tables.clone());
        let mut session = identity_only_record();
        store.create(&mut session).await.unwrap();
        let (user, jti) = (unique("user"), unique("jti"));
        store.bump_epoch(&user, 1).await.unwrap();
        let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
        store.kill(&jti, until).await.unwrap();
        (store, session, user, jti)
    });
    let session_key = session.id.to_string();

    let mut group = c.benchmark_group("dynamodb");
    group.bench_function("raw GetItem session", |b| {
        b.to_async(&rt).iter(|| async {
            let out = client
                .get_item()
                .table_name(&tables.sessions)
                .key("id", AttributeValue::S(black_box(session_key.clone())))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            black_box(out.item)
        })
    });
    group.bench_function("session load", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.load(black_box(&session.id)).await.unwrap()) })
    });
    group.bench_function("raw GetItem killed id", |b| {
        b.to_async(&rt).iter(|| async {
            let out = client
                .get_item()
                .table_name(&tables.revocation)
                .key(
                    "pk",
                    AttributeValue::S(format!("killed#{}", black_box(&jti))),
                )
                .key("sk", AttributeValue::N("0".to_owned()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            assert!(out.item.is_some());
            black_box(out.item)
        })
    });
    group.bench_function("is_killed", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.is_killed(black_box(&jti)).await.unwrap()) })
    });
    group.bench_function("epoch", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.epoch(black_box(&user)).await.unwrap()) })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = lookups
}
criterion_main!(benches);
