//! Mapping the SDK's errors onto [`StoreError`].

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use session_bridge_store::StoreError;

use crate::Error;

const STORE: &str = "dynamodb-php";

pub(super) fn decode(what: &'static str) -> Error {
    Error::Store(StoreError::Decode {
        store: STORE,
        source: what.into(),
    })
}

/// Error codes that mean "not now": throttled after the SDK's own retries,
/// or a server-side failure.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

pub(super) fn sdk_error<E, R>(err: SdkError<E, R>) -> Error
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
    Error::Store(if unavailable {
        StoreError::Unavailable {
            store: STORE,
            source: Box::new(err),
        }
    } else {
        StoreError::Backend {
            store: STORE,
            source: Box::new(err),
        }
    })
}
