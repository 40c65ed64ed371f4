//! Store traits for session-bridge, plus the two stores that need no server.
//!
//! session-bridge keeps two kinds of state:
//!
//! - **sessions**: server-side records referenced by an opaque id in a
//!   cookie. Their trait is [`tower_sessions_core::SessionStore`] (re-exported
//!   as [`SessionStore`]), so any tower-sessions store can be used and every
//!   store written here can be used by plain tower-sessions apps too.
//! - **revocation state**: per-user *epochs* ("credentials issued before this
//!   instant are dead") and a small list of *killed* token ids whose entries
//!   disappear on their own once the longest token lifetime has passed. Its
//!   trait is [`RevocationStore`].
//!
//! Stores hold bytes and expiry; policy and crypto stay in the core crate.
//! Adapters never parse configuration or load credentials: they take an
//! already-built client.
//!
//! This crate ships:
//!
//! - [`MemoryStore`]: both traits in process memory, for tests and for
//!   library users who run a single instance and accept losing state on
//!   restart;
//! - [`EmbeddedStore`]: both traits in one [redb] file on local disk, the
//!   default of `session-bridge serve`: durable across restarts, no server.
//!
//! [redb]: https://docs.rs/redb

#[cfg(feature = "embedded")]
mod embedded;
mod error;
mod memory;
mod revocation;

#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStore;
pub use error::{BoxError, StoreError, StoreResult};
pub use memory::MemoryStore;
pub use revocation::{Change, ChangeBatch, Cursor, Epoch, RevocationStore};
pub use tower_sessions_core::{self, SessionStore, session::Id, session::Record};

/// Current wall-clock time, truncated to whole seconds as stored records are.
/// How long a store's change log keeps entries unless configured otherwise.
pub const DEFAULT_LOG_RETENTION: time::Duration = time::Duration::days(1);

pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
