//! The conformance suite every session-bridge store passes.
//!
//! Each case is a generic async function over a store that implements both
//! [`SessionStore`] and [`RevocationStore`]; a failed expectation panics, so
//! the functions are meant to be called from tests. [`conformance_tests!`]
//! expands to one `#[tokio::test]` per case for a store constructor:
//!
//! ```ignore
//! async fn store() -> MyStore { /* a fresh store, e.g. a unique key prefix */ }
//!
//! session_bridge_conformance::conformance_tests!(store().await);
//! ```
//!
//! The constructor expression runs once per case; stores that share a server
//! should give each call its own namespace (key prefix, table), although the
//! cases also use unique ids and user names and only look at their own
//! changes, so a shared store works too.
//!
//! Two cases need more than a store and are called by hand:
//! [`unavailable_when_down`] (a store pointed at a closed port) and
//! [`survives_restart`] (a store whose server the test can stop and start).
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dev-dependency.

// A test-support crate: panicking is how a case reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod outage;
mod revocation;
mod sessions;

use std::future::Future;
use std::time::Duration;

pub use outage::{closed_port, survives_restart, unavailable_when_down};
pub use revocation::{
    changes_since_in_order, changes_since_pages_without_loss, epoch_bumps_are_monotonic,
    epoch_concurrent_bumps_end_at_max, killed_ids_expire, ping_works, unicode_revocation,
};
pub use session_bridge_store::{self as store, RevocationStore, SessionStore};
pub use sessions::{
    create_load_save_delete, create_never_overwrites, expired_record_is_never_returned,
    identity_only_record, large_record, save_after_delete_is_not_an_error, unicode_data,
};

/// The longest a single store call may take before a case fails with
/// "hang": well above any adapter's own timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Await `fut`, failing the case when it takes longer than [`CALL_TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {CALL_TIMEOUT:?} (hang)"),
    }
}

/// A short random string, to keep names unique between cases and runs.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:032x}", store::Id::default().0)
}

/// Expand to one `#[tokio::test]` per conformance case.
///
/// The argument is an expression evaluated inside each (async) test to get a
/// fresh store; it may use `.await`.
///
/// ```ignore
/// session_bridge_conformance::conformance_tests!(MemoryStore::default());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr $(,)?) => {
        $crate::__conformance_case!($make, create_load_save_delete);
        $crate::__conformance_case!($make, expired_record_is_never_returned);
        $crate::__conformance_case!($make, create_never_overwrites);
        $crate::__conformance_case!($make, save_after_delete_is_not_an_error);
        $crate::__conformance_case!($make, large_record);
        $crate::__conformance_case!($make, unicode_data);
        $crate::__conformance_case!($make, epoch_bumps_are_monotonic);
        $crate::__conformance_case!($make, epoch_concurrent_bumps_end_at_max);
        $crate::__conformance_case!($make, killed_ids_expire);
        $crate::__conformance_case!($make, changes_since_in_order);
        $crate::__conformance_case!($make, changes_since_pages_without_loss);
        $crate::__conformance_case!($make, unicode_revocation);
        $crate::__conformance_case!($make, ping_works);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ($make:expr, $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let store = $make;
            $crate::$case(store).await;
        }
    };
}
