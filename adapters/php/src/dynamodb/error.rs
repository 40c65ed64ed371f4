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

/// Unreachable, timed out, throttled or failing server-side → `Unavailable`;
/// anything else → `Backend` (the same classification as the bridge's own
/// DynamoDB store).
pub(super) fn sdk_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    Error::Store(session_bridge_dynamodb::store_error(STORE, err))
}
