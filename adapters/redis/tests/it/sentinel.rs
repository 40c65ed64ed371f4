//! Redis behind Sentinel (`SB_REDIS_SENTINEL_URL`).

session_bridge_conformance::conformance_tests!(crate::store("SB_REDIS_SENTINEL_URL").await);
