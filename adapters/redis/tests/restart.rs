//! The harness's Redis stops and starts under a live store (own test binary:
//! the outage must not hit other tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::{RedisStore, recommended_builder};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_restart() {
    let ctl = env("SB_REDIS_CTL");
    let config = Config::from_url(&env("SB_REDIS_URL")).unwrap();
    let pool = recommended_builder(config, Duration::from_secs(1))
        .build_pool(2)
        .unwrap();
    pool.init().await.unwrap();
    let store = RedisStore::new(pool)
        .with_key_prefix(format!(
            "{}:",
            session_bridge_conformance::unique("restart")
        ))
        .with_timeout(Duration::from_secs(1));

    session_bridge_conformance::survives_restart(store, |action| {
        let ctl = ctl.clone();
        async move {
            let status = tokio::process::Command::new(&ctl)
                .arg(action)
                .status()
                .await
                .unwrap_or_else(|e| panic!("{ctl} {action}: {e}"));
            assert!(status.success(), "{ctl} {action}: {status}");
        }
    })
    .await;
}
