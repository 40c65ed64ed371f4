//! DynamoDB on moto (`SB_MOTO_URL`).

session_bridge_conformance::conformance_tests!(crate::store().await);
