//! Mapping fred's errors onto [`StoreError`].

use fred::error::{Error as RedisError, ErrorKind};
use session_bridge_store::StoreError;

pub(crate) const STORE: &str = "redis";

/// Error replies that mean "not now" (loading, failover, resharding) rather
/// than "wrong".
const TRANSIENT_REPLIES: &[&str] = &[
    "LOADING",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "BUSY ",
    "NOREPLICAS",
];

/// Whether the error means Redis could not be reached or could not answer in
/// time, so that retrying later may succeed.
fn is_unavailable(err: &RedisError) -> bool {
    match err.kind() {
        ErrorKind::IO
        | ErrorKind::Timeout
        | ErrorKind::Canceled
        | ErrorKind::Backpressure
        | ErrorKind::Sentinel => true,
        #[cfg(feature = "tls")]
        ErrorKind::Tls => true,
        _ => TRANSIENT_REPLIES
            .iter()
            .any(|reply| err.details().starts_with(reply)),
    }
}

pub(crate) fn redis_error(err: RedisError) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable {
            store: STORE,
            source: Box::new(err),
        }
    } else {
        StoreError::Backend {
            store: STORE,
            source: Box::new(err),
        }
    }
}

pub(crate) fn timed_out(elapsed: tokio::time::error::Elapsed) -> StoreError {
    StoreError::Unavailable {
        store: STORE,
        source: Box::new(elapsed),
    }
}

pub(crate) fn decode(what: &'static str) -> StoreError {
    StoreError::Decode {
        store: STORE,
        source: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_failover_errors_are_unavailable() {
        for err in [
            RedisError::new(ErrorKind::IO, "connection refused"),
            RedisError::new(ErrorKind::Timeout, "Request timed out."),
            RedisError::new(ErrorKind::Cluster, "CLUSTERDOWN The cluster is down"),
            RedisError::new(ErrorKind::Unknown, "LOADING Redis is loading"),
            RedisError::new(ErrorKind::Unknown, "READONLY You can't write"),
        ] {
            assert!(redis_error(err).is_unavailable());
        }
    }

    #[test]
    fn wrong_answers_are_backend_errors() {
        for err in [
            RedisError::new(ErrorKind::InvalidArgument, "WRONGTYPE Operation"),
            RedisError::new(ErrorKind::Cluster, "CROSSSLOT Keys"),
            RedisError::new(ErrorKind::Unknown, "NOSCRIPT No matching script"),
        ] {
            assert!(matches!(redis_error(err), StoreError::Backend { .. }));
        }
    }
}
