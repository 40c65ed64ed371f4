//! Legacy PHP sessions for session-bridge: read and write the PHP app's own
//! session records, so PHP pages see the bridge's identity and the bridge
//! sees PHP's logins.
//!
//! Three layers:
//!
//! 1. **Codecs** for PHP's `session.serialize_handler` formats ([`Format`]:
//!    `php`, `php_binary`, `php_serialize`) over PHP's `serialize()` values
//!    ([`Value`]). Scalars, byte strings and arrays are typed; objects,
//!    enums, references and anything else stay [`Raw`] bytes and are written
//!    back byte-exact. Decoding is bounded ([`Limits`]: input size, nesting
//!    depth, value count; lengths checked against the input before anything
//!    is allocated) and never panics.
//! 2. **Records**: a [`PhpSession`] is `$_SESSION`. The bridge writes its
//!    [`BridgeIdentity`] under one key ([`DEFAULT_IDENTITY_KEY`],
//!    `$_SESSION['bridge']`) and reads a login the PHP app recorded through a
//!    [`LoginMapping`] (`$_SESSION['user_id']` → `sub`, ...). Every other
//!    key keeps its bytes.
//! 3. **Stores** of the PHP app's records ([`PhpSessionStore`]): phpredis
//!    keys ([`PhpRedisStore`], on a [`fred`] pool) and aws-sdk-php DynamoDB
//!    items ([`PhpDynamoDbStore`], on an [`aws_sdk_dynamodb::Client`]).
//!    Writes are read-modify-writes that never lose a concurrent PHP write,
//!    and take PHP's session lock when the app uses one (see each store).
//!
//! Like every session-bridge adapter, the stores take an already-built
//! client (re-exported here) and parse no configuration.
//!
//! ```no_run
//! # async fn demo(pool: session_bridge_php::fred::clients::Pool) -> Result<(), session_bridge_php::Error> {
//! use session_bridge_php::{BridgeIdentity, LoginMapping, PhpRedisStore, PhpSessionStore};
//!
//! let php = PhpRedisStore::new(pool);
//! let id = "a8f5f167f44f4964e6c998dee827110c"; // the PHPSESSID cookie
//!
//! // A user the PHP app logged in:
//! if let Some(session) = php.load(id).await? {
//!     let login = session.identity_from_mapping(&LoginMapping::default())?;
//!     # let _ = login;
//! }
//!
//! // Tell PHP pages who logged in through the bridge:
//! let identity = BridgeIdentity {
//!     sub: "u-1".into(),
//!     username: Some("alice".into()),
//!     groups: vec!["staff".into()],
//!     auth_time: Some(1_767_225_600),
//!     iss: "https://idp.example".into(),
//! };
//! php.write_identity(id, "bridge", &identity).await?;
//!
//! // Logout: the PHP session ends too.
//! php.delete(id).await?;
//! # Ok(()) }
//! ```
//!
//! # Not covered
//!
//! The `igbinary` serializer, phpredis's compression options
//! (`redis.session.compression`, phpredis 6) and `S:`-escaped strings as
//! typed values (they pass through as raw bytes).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod codec;
mod dynamodb;
mod error;
mod identity;
pub mod index;
mod redis;
mod session;
mod store;
mod value;

pub use aws_sdk_dynamodb;
pub use fred;

pub use codec::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_INPUT, Format, Limits, MAX_DEPTH_CAP,
    serialize, unserialize,
};
pub use dynamodb::{DataType, DynamoLayout, DynamoLocking, PhpDynamoDbStore};
pub use error::{DecodeProblem, EncodeProblem, Error};
pub use identity::{BridgeIdentity, DEFAULT_IDENTITY_KEY, LoginMapping};
pub use index::{IndexedSession, PhpRecord};
pub use redis::{DEFAULT_GC_MAXLIFETIME, DEFAULT_REDIS_PREFIX, PhpRedisStore, RedisLocking};
pub use session::PhpSession;
pub use store::{Change, PhpSessionStore, new_session_id, validate_session_id};
pub use value::{Array, Key, Raw, RawKind, Value};
