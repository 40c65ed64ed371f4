//! The crate's one error type.

use std::fmt;
use std::time::Duration;

use session_bridge_store::StoreError;

/// What went wrong reading or writing a PHP session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a session (or value) in the expected format, or
    /// exceed a [`Limits`](crate::Limits) bound.
    #[error("cannot decode PHP session data at byte {offset}: {problem}")]
    Decode {
        /// Byte offset in the input where decoding stopped.
        offset: usize,
        /// What was wrong there.
        problem: DecodeProblem,
    },
    /// The session cannot be written in its format.
    #[error("cannot encode PHP session data: {0}")]
    Encode(EncodeProblem),
    /// A value the bridge reads (its identity, a mapped login) has the wrong
    /// shape.
    #[error("session value `{key}` is not usable: {problem}")]
    Identity {
        /// The session key (and sub-key) that held the value.
        key: String,
        /// What was wrong with it.
        problem: &'static str,
    },
    /// The session id is not one PHP would accept (1 to 256 characters out of
    /// `a-z A-Z 0-9 , -`).
    #[error("invalid PHP session id")]
    InvalidSessionId,
    /// PHP held the session's lock for longer than the configured wait.
    #[error("the PHP session is locked (waited {waited:?})")]
    Locked {
        /// How long the adapter waited.
        waited: Duration,
    },
    /// The record kept changing under a read-modify-write: every attempt lost
    /// to a concurrent writer.
    #[error("the PHP session changed concurrently {attempts} times in a row")]
    Conflict {
        /// Attempts made.
        attempts: u32,
    },
    /// The store failed or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Whether the store was unreachable (as opposed to answering wrongly or
    /// holding bad data); retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_unavailable())
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// The input is longer than [`Limits::max_input`](crate::Limits::max_input).
    TooLarge {
        /// Input length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Values nest deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    TooDeep,
    /// More values than [`Limits::max_elements`](crate::Limits::max_elements).
    TooManyElements,
    /// The input ends in the middle of a value.
    Truncated,
    /// A length or count is larger than what is left of the input.
    LengthOutOfRange,
    /// A reference (`r:` / `R:`) points at no earlier value.
    BadReference,
    /// Something else than what the format allows here; names what was
    /// expected.
    Syntax(&'static str),
}

impl fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(f, "input of {len} bytes exceeds {max}"),
            Self::TooDeep => f.write_str("values nest too deep"),
            Self::TooManyElements => f.write_str("too many values"),
            Self::Truncated => f.write_str("input ends inside a value"),
            Self::LengthOutOfRange => f.write_str("declared length exceeds the input"),
            Self::BadReference => f.write_str("reference to no earlier value"),
            Self::Syntax(expected) => write!(f, "expected {expected}"),
        }
    }
}

/// Why a session could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeProblem {
    /// The `php` format cannot hold a key with `|`; `php` and `php_binary`
    /// hold only string keys; `php_binary` keys are at most 127 bytes.
    UnsupportedKey,
    /// A reference points into a value that was replaced or removed (or
    /// into another session), so it cannot be renumbered.
    DanglingReference,
    /// The session holds `C:` (`Serializable`) values, whose payloads may
    /// take reference slots that cannot be counted, and a key changed that
    /// is followed by keys left as decoded. Only trailing keys (the last
    /// ones, or new ones) can change then.
    SerializableMoved,
    /// The store keeps session data as a DynamoDB string (aws-sdk-php's
    /// default), and the session holds bytes that are not UTF-8.
    NotUtf8,
    /// The encoded session is longer than the store's
    /// [`Limits::max_input`](crate::Limits::max_input): it could not be read
    /// back.
    TooLarge,
}

impl fmt::Display for EncodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedKey => f.write_str("a key this format cannot hold"),
            Self::DanglingReference => f.write_str("a reference to a replaced or removed value"),
            Self::SerializableMoved => f.write_str(
                "a change before untouched keys in a session with `C:` (Serializable) values",
            ),
            Self::NotUtf8 => f.write_str("session data is not UTF-8 but is stored as a string"),
            Self::TooLarge => f.write_str("the encoded session exceeds the size limit"),
        }
    }
}
