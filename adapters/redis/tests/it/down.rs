//! A store whose Redis is not there.

use std::time::{Duration, Instant};

use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::{RedisStore, recommended_builder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_when_down() {
    let port = session_bridge_conformance::closed_port();
    let config = Config::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    let pool = recommended_builder(config, Duration::from_millis(500))
        .build_pool(1)
        .unwrap();
    // Connect in the background: startup must not wait for Redis.
    let _tasks = pool.connect();
    let store = RedisStore::new(pool).with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    session_bridge_conformance::unavailable_when_down(store).await;
    // 2 rounds of 10 calls, each bounded by the timeout (plus slack).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
