//! The shared conformance suite against the stores that need no server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod memory {
    use session_bridge_store::MemoryStore;

    session_bridge_conformance::conformance_tests!(MemoryStore::default());
}

#[cfg(feature = "embedded")]
mod embedded {
    use session_bridge_store::EmbeddedStore;

    /// A fresh store file. The directory is removed right after opening: the
    /// store keeps its open file, and nothing is left behind after the test.
    async fn store() -> EmbeddedStore {
        let dir = tempfile::tempdir().expect("tempdir");
        EmbeddedStore::open(dir.path().join("store.redb"))
            .await
            .expect("open embedded store")
    }

    session_bridge_conformance::conformance_tests!(store().await);
}
