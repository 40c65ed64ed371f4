//! The library alone: request flows through `BridgeLayer`, in-process, with
//! no server running (`cargo test -p session-bridge --no-default-features`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod common {
    pub mod route_tests;
}

mod memory {
    crate::route_tests!(async { session_bridge_store::MemoryStore::default() });
}

#[cfg(feature = "embedded")]
mod embedded {
    crate::route_tests!(async {
        let dir = std::env::temp_dir().join(format!(
            "sb-layer-test-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        session_bridge_store::EmbeddedStore::open(dir.join("store.redb"))
            .await
            .unwrap()
    });
}
