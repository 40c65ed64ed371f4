//! Redis standalone (`SB_REDIS_URL`).

session_bridge_conformance::conformance_tests!(crate::store("SB_REDIS_URL").await);
