//! Redis Cluster of three masters (`SB_REDIS_CLUSTER_URL`).

session_bridge_conformance::conformance_tests!(crate::store("SB_REDIS_CLUSTER_URL").await);
