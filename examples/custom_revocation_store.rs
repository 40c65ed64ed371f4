//! A custom `RevocationStore`: the revocation state (per-user epochs and
//! killed token ids) kept wherever you like. This one wraps the memory
//! store and logs every change, the shape of an audit trail or of a store
//! for a database the project has no adapter for. The store's written
//! contract is on the trait; `session-bridge-conformance` checks an
//! implementation against it.
//!
//! ```sh
//! cargo run --example custom_revocation_store --no-default-features
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use session_bridge::Principal;
use session_bridge::bridge::Bridge;
use session_bridge::tokens::{config::SigningAlgorithm, keys::KeyRing};
use session_bridge_store::{ChangeBatch, Cursor, Epoch, MemoryStore, RevocationStore, StoreResult};
use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
struct AuditedRevocation {
    inner: MemoryStore,
}

#[async_trait]
impl RevocationStore for AuditedRevocation {
    async fn epoch(&self, user: &str) -> StoreResult<Option<Epoch>> {
        self.inner.epoch(user).await
    }

    async fn bump_epoch(&self, user: &str, to: Epoch) -> StoreResult<Epoch> {
        let epoch = self.inner.bump_epoch(user, to).await?;
        println!("audit: {user} logged out everywhere (epoch {epoch})");
        Ok(epoch)
    }

    async fn kill(&self, id: &str, expires_at: OffsetDateTime) -> StoreResult<()> {
        self.inner.kill(id, expires_at).await?;
        // Token ids are not secrets, but keep logs short anyway.
        println!(
            "audit: token id {}… killed until {expires_at}",
            &id[..id.len().min(8)]
        );
        Ok(())
    }

    async fn is_killed(&self, id: &str) -> StoreResult<bool> {
        self.inner.is_killed(id).await
    }

    async fn changes_since(&self, since: Cursor, limit: usize) -> StoreResult<ChangeBatch> {
        self.inner.changes_since(since, limit).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = MemoryStore::default();
    let bridge = Bridge::builder()
        .stores(Arc::new(sessions), Arc::new(AuditedRevocation::default()))
        .keys(Arc::new(KeyRing::in_memory(SigningAlgorithm::ES256)?))
        .issuer("http://127.0.0.1:3000")
        .build()?;
    let alice = Principal::new("alice-id", "http://127.0.0.1:3000");
    let session = bridge.sessions().create(&alice, None).await?;
    let token = bridge.mint_for(&session.to_identity(), &session.identity.family)?;
    println!("minted a token for {}", alice.sub);
    bridge
        .kill(&session.identity.family, token.expires_at)
        .await?;
    let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    bridge.bump_epoch(&alice.sub, now_ms).await?;
    Ok(())
}
