//! DynamoDB store for session-bridge: sessions and revocation state on
//! [`aws_sdk_dynamodb`].
//!
//! [`DynamoDbStore`] implements both store traits of [`session_bridge_store`]
//! on two tables (create them with [`create_tables`]; names in
//! [`TableNames`]). Both have TTL on the Number attribute `expires_at`; since
//! DynamoDB deletes expired items late (typically within days), every read
//! checks the expiry itself.
//!
//! # Sessions table
//!
//! Partition key `id` (S, the session id). Attributes: `data` (B, the
//! record's data as MessagePack), `expires_at` (N, Unix seconds; the record's
//! expiry is kept to the second). `create` is a `PutItem` with
//! `attribute_not_exists(id)` (a taken id gets a new one, never
//! overwritten); `save` a `PutItem` with `attribute_exists(id)` (a session
//! deleted meanwhile is not brought back); `load` a consistent `GetItem`.
//!
//! # Revocation table
//!
//! Partition key `pk` (S), sort key `sk` (N):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | epoch | `epoch#<user>` | 0 | `v`: epoch (ms); no TTL |
//! | killed id | `killed#<id>` | 0 | `v` = `expires_at`: Unix seconds |
//! | change | `log#<hour>` | `ms × 1000 + n` | `k` (`epoch`\|`killed`), `s` (user or id), `v`, `expires_at` (end of retention) |
//!
//! A bump or a kill is one `TransactWriteItems`: an `UpdateItem` guarded by
//! `attribute_not_exists(v) OR v < :v` (so epochs only rise and a kill never
//! shortens, whatever the concurrency) plus a `PutItem` of the change-log
//! entry — a replica reading the log never misses a change that took effect.
//!
//! ## Choice: hourly log partitions
//!
//! `changes_since` queries `log#<hour>` partitions from the cursor's hour to
//! the current one (5 minutes ahead, for writers whose clock runs fast), with
//! the sort key after the cursor. A replica that polls close to the head
//! costs one consistent `Query` (1 RCU for up to 4 KB of changes) per poll,
//! or two across an hour boundary; a replica starting cold reads at most
//! retention ÷ 1 h partitions (24 for the default day). Writes are rare
//! (logouts), so one partition per hour is far from DynamoDB's per-partition
//! limits. A GSI on a constant key would cost a second write per change and
//! still read one hot partition; a Scan would read the whole table. The
//! price: a write costs 4 WCU (a transaction doubles each item's cost) and
//! entries carry the writer's clock, so readers should re-read with an
//! overlap covering clock skew between instances (replaying is idempotent).
//!
//! # Client configuration
//!
//! The adapter takes an already-built [`Client`];
//! timeouts and retries come from its config. Build it with
//! [`recommended_timeouts`] and [`recommended_retries`] so that an
//! unreachable endpoint gives
//! [`StoreError::Unavailable`] within a bounded time and throttling is
//! retried with backoff. Connection, timeout and throttling errors map to
//! `Unavailable`; any other error the service answers maps to `Backend`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), session_bridge_dynamodb::StoreError> {
//! use std::time::Duration;
//! use session_bridge_dynamodb::aws_sdk_dynamodb::{Client, Config, config::{BehaviorVersion, Region}};
//! use session_bridge_dynamodb::{DynamoDbStore, TableNames, create_tables, recommended_retries, recommended_timeouts};
//!
//! // With aws-config the region and credentials come from the standard
//! // chain; here: a fixed region and whatever provider the service chose.
//! let config = Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("eu-west-1"))
//!     .timeout_config(recommended_timeouts(Duration::from_secs(2)))
//!     .retry_config(recommended_retries())
//!     .build();
//! let client = Client::from_conf(config);
//! let tables = TableNames::default();
//! create_tables(&client, &tables).await?;
//! let store = DynamoDbStore::new(client, tables);
//! # let _ = store;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod revocation;
mod sessions;
mod tables;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;

pub use aws_sdk_dynamodb;
pub use error::store_error;
pub use session_bridge_store::StoreError;
pub use tables::create_tables;

/// Names of the two tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Sessions (partition key `id`).
    pub sessions: String,
    /// Epochs, killed ids and the change log (partition key `pk`, sort key
    /// `sk`).
    pub revocation: String,
}

impl Default for TableNames {
    fn default() -> Self {
        Self {
            sessions: "session-bridge-sessions".to_owned(),
            revocation: "session-bridge-revocation".to_owned(),
        }
    }
}

/// Sessions and revocation state on DynamoDB. See the [crate docs](crate).
///
/// Cloning is cheap and shares the client.
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    tables: TableNames,
    log_retention: time::Duration,
    /// Last change-log sort key this process wrote (see `next_log_key`).
    log_clock: Arc<Mutex<i64>>,
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbStore")
            .field("tables", &self.tables)
            .field("log_retention", &self.log_retention)
            .finish_non_exhaustive()
    }
}

impl DynamoDbStore {
    /// A store on `client` using `tables` (created beforehand, see
    /// [`create_tables`]), keeping change-log entries for one day.
    ///
    /// ```no_run
    /// # fn demo(client: session_bridge_dynamodb::aws_sdk_dynamodb::Client) {
    /// use session_bridge_dynamodb::{DynamoDbStore, TableNames};
    /// let store = DynamoDbStore::new(client, TableNames::default());
    /// # let _ = store;
    /// # }
    /// ```
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables,
            log_retention: session_bridge_store::DEFAULT_LOG_RETENTION,
            log_clock: Arc::new(Mutex::new(0)),
        }
    }

    /// Keep change-log entries for `retention` (at least the longest token
    /// lifetime; default one day).
    #[must_use]
    pub fn with_log_retention(mut self, retention: time::Duration) -> Self {
        self.log_retention = retention;
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table names.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }
}

/// Timeouts for the client config: connecting within `attempt`, each attempt
/// within `attempt`, a whole call (retries included) within `3 × attempt`.
///
/// ```
/// use std::time::Duration;
/// let timeouts = session_bridge_dynamodb::recommended_timeouts(Duration::from_secs(2));
/// assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(6)));
/// ```
pub fn recommended_timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt)
        .read_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3)
        .build()
}

/// Retries for the client config: the SDK's standard mode (exponential
/// backoff with jitter on throttling and transient errors), 3 attempts.
///
/// ```
/// let retries = session_bridge_dynamodb::recommended_retries();
/// assert_eq!(retries.max_attempts(), 3);
/// ```
pub fn recommended_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}
