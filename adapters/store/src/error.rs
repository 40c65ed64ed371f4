use std::error::Error as StdError;

/// A boxed error from a store's client library, kept as the source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Result of a revocation-store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What went wrong in a store.
///
/// The variants separate what a caller acts on differently: an unreachable
/// store (retry later, answer 503) from a store that answered with something
/// unexpected (a bug or corruption, log it) from bad data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached in time (connection refused, timeout,
    /// failover in progress). Retrying later may succeed.
    #[error("store `{store}` is unavailable")]
    Unavailable {
        /// Short name of the store (`redis`, `dynamodb`, `embedded`, ...).
        store: &'static str,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The store answered, but with an error.
    #[error("store `{store}` failed")]
    Backend {
        /// Short name of the store.
        store: &'static str,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A record could not be encoded for storage.
    #[error("could not encode a record for store `{store}`")]
    Encode {
        /// Short name of the store.
        store: &'static str,
        /// The encoder's error.
        #[source]
        source: BoxError,
    },
    /// A stored record could not be decoded.
    #[error("could not decode a record from store `{store}`")]
    Decode {
        /// Short name of the store.
        store: &'static str,
        /// The decoder's error.
        #[source]
        source: BoxError,
    },
    /// An argument was rejected before reaching the store (empty id, id too
    /// long for the store's keys, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl StoreError {
    /// Whether the store was unreachable (as opposed to answering wrongly).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

impl From<StoreError> for tower_sessions_core::session_store::Error {
    fn from(err: StoreError) -> Self {
        use tower_sessions_core::session_store::Error as E;
        // The foreign trait forces a string: keep the whole source chain in it.
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        match err {
            StoreError::Encode { .. } => E::Encode(text),
            StoreError::Decode { .. } => E::Decode(text),
            _ => E::Backend(text),
        }
    }
}
