//! Session load and revocation lookups through the store, against fred's raw
//! `GET` of the same key on the same server in the same run.
//!
//! ```sh
//! . infra/harness.sh && cargo bench -p session-bridge-redis --bench lookup
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use session_bridge_conformance::{RevocationStore, SessionStore, identity_only_record, unique};
use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::{RedisStore, recommended_builder};
use time::OffsetDateTime;

fn lookups(c: &mut Criterion) {
    let url = std::env::var("SB_REDIS_URL")
        .expect("SB_REDIS_URL is not set: source infra/harness.sh first");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prefix = format!("{}:", unique("bench"));
    let (store, session, user, jti) = rt.block_on(async {
        let pool = recommended_builder(Config::from_url(&url).unwrap(), Duration::from_secs(2))
            .build_pool(1)
            .unwrap();
        pool.init().await.unwrap();
        let store = RedisStore::new(pool).with_key_prefix(prefix.clone());
        let mut session = identity_only_record();
        store.create(&mut session).await.unwrap();
        let (user, jti) = (unique("user"), unique("jti"));
        store.bump_epoch(&user, 1).await.unwrap();
        let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
        store.kill(&jti, until).await.unwrap();
        (store, session, user, jti)
    });
    let session_key = session.id.to_string();
    // The key `is_killed` reads (the layout in the crate docs).
    let killed_key = format!("{{{prefix}}}killed:{jti}");
    let mut group = c.benchmark_group("redis");
    group.bench_function("raw GET session key", |b| {
        b.to_async(&rt).iter(|| async {
            let v: Option<Vec<u8>> = store.pool().get(black_box(&session_key)).await.unwrap();
            black_box(v)
        })
    });
    group.bench_function("session load", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.load(black_box(&session.id)).await.unwrap()) })
    });
    group.bench_function("raw GET killed key", |b| {
        b.to_async(&rt).iter(|| async {
            let v: Option<String> = store.pool().get(black_box(&killed_key)).await.unwrap();
            assert!(v.is_some());
            black_box(v)
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
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = lookups
}
criterion_main!(benches);
