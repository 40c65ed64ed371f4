//! The conformance suite and footprint figures against the Redis servers
//! that `infra/harness.sh` starts (URLs from the environment at run time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod down;
mod footprint;
mod pubsub;
mod sentinel;
mod standalone;
mod tls;

use std::time::Duration;

use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::{RedisStore, recommended_builder};

/// An environment variable the harness sets; a clear failure when missing.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)"
        )
    })
}

/// A connected pool on the server named by the environment variable `var`.
pub(crate) async fn pool(var: &str) -> Pool {
    let url = env(var);
    let config = Config::from_url(&url).unwrap_or_else(|e| panic!("{var}: {e}"));
    let pool = recommended_builder(config, Duration::from_secs(2))
        .build_pool(2)
        .expect("build pool");
    pool.init()
        .await
        .unwrap_or_else(|e| panic!("connect to {var}: {e}"));
    pool
}

/// A store on that server with a key prefix of its own.
pub(crate) async fn store(var: &str) -> RedisStore {
    RedisStore::new(pool(var).await)
        .with_key_prefix(format!("{}:", session_bridge_conformance::unique("sbtest")))
}
