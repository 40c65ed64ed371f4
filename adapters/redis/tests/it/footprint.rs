//! Bytes Redis holds for one identity-only session (printed; run with
//! `--nocapture` to see the figures).

use session_bridge_conformance::{SessionStore, identity_only_record};
use session_bridge_redis::fred::prelude::*;
use session_bridge_redis::fred::types::{ClusterHash, CustomCommand};

#[tokio::test]
async fn identity_only_session_size() {
    let store = crate::store("SB_REDIS_URL").await;
    let mut record = identity_only_record();
    store.create(&mut record).await.unwrap();
    let key = record.id.to_string();

    let strlen: i64 = store.pool().strlen(&key).await.unwrap();
    let memory: i64 = store
        .pool()
        .custom(
            CustomCommand::new("MEMORY", ClusterHash::Offset(1), false),
            vec!["USAGE", key.as_str()],
        )
        .await
        .unwrap();
    let encoded = rmp_serde::to_vec(&record).unwrap().len();
    println!(
        "redis identity-only session: key {} bytes, value STRLEN {strlen} bytes \
         (MessagePack record {encoded}), MEMORY USAGE {memory} bytes",
        key.len()
    );
    assert_eq!(usize::try_from(strlen).unwrap(), encoded);
    assert!(memory < 1024, "MEMORY USAGE {memory}");
    store.delete(&record.id).await.unwrap();
}
