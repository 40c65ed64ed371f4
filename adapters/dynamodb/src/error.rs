//! Mapping the SDK's errors onto [`StoreError`].

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use session_bridge_store::StoreError;

pub(crate) const STORE: &str = "dynamodb";

/// Error codes that mean "not now": throttled after the SDK's own retries,
/// or a server-side failure.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Unreachable, timed out, throttled or failing server-side → `Unavailable`;
/// anything else the service answered → `Backend`.
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    store_error(STORE, err)
}

/// Map an SDK error to a [`StoreError`] of the store named `store`:
/// unreachable, timed out, throttled (after the SDK's own retries) or failing
/// server-side → [`StoreError::Unavailable`]; anything else the service
/// answered → [`StoreError::Backend`]. Shared by every DynamoDB-backed store
/// of the project so they classify failures alike.
pub fn store_error<E, R>(store: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let unavailable = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c)),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable {
            store,
            source: Box::new(err),
        }
    } else {
        StoreError::Backend {
            store,
            source: Box::new(err),
        }
    }
}

pub(crate) fn decode(what: &'static str) -> StoreError {
    StoreError::Decode {
        store: STORE,
        source: what.into(),
    }
}

pub(crate) fn backend(what: &'static str) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: what.into(),
    }
}
