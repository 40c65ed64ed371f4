//! `[store]`: where sessions and revocation state live.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problems;

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Which store: `embedded` (default), `memory`, `redis` or `dynamodb`.
    pub kind: StoreKind,
    /// `[store.embedded]`.
    pub embedded: EmbeddedStoreConfig,
    /// `[store.redis]`.
    pub redis: RedisStoreConfig,
    /// `[store.dynamodb]`.
    pub dynamodb: DynamoDbStoreConfig,
}

/// Store kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A local file (redb): durable, single instance, no server.
    #[default]
    Embedded,
    /// Process memory: lost on exit. Tests and demos only.
    Memory,
    /// Redis standalone, Sentinel or Cluster.
    Redis,
    /// Amazon DynamoDB (or a compatible server).
    DynamoDb,
}

impl StoreKind {
    /// The name used in config and in `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::DynamoDb => "dynamodb",
        }
    }
}

/// `[store.embedded]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EmbeddedStoreConfig {
    /// The store file; default `<data_dir>/store.redb`.
    pub path: Option<PathBuf>,
}

/// `[store.redis]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// `redis://`, `rediss://` (TLS), `redis-cluster://…?node=…`,
    /// `redis-sentinel://…?sentinelServiceName=…`. May hold a password: never
    /// logged.
    pub url: Option<String>,
    /// Prefix of revocation keys.
    pub key_prefix: String,
    /// Per-command timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "sb:".to_owned(),
            timeout: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[store.dynamodb]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DynamoDbStoreConfig {
    /// AWS region; the standard AWS chain (env, profile) when not set.
    pub region: Option<String>,
    /// Endpoint override (a local DynamoDB-compatible server).
    pub endpoint_url: Option<url::Url>,
    /// Table for sessions.
    pub sessions_table: String,
    /// Table for revocation state.
    pub revocation_table: String,
    /// Per-attempt timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for DynamoDbStoreConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            sessions_table: "session-bridge-sessions".to_owned(),
            revocation_table: "session-bridge-revocation".to_owned(),
            timeout: Duration::from_secs(2),
        }
    }
}

const REDIS_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

impl StoreConfig {
    /// Check the settings of the selected store.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        match self.kind {
            StoreKind::Embedded | StoreKind::Memory => {
                if let Some(path) = &self.embedded.path
                    && path.as_os_str().is_empty()
                {
                    problems.push(format!("{key}.embedded.path"), "must not be empty");
                }
            }
            StoreKind::Redis => {
                let url_key = format!("{key}.redis.url");
                match self.redis.url.as_deref() {
                    None | Some("") => {
                        problems.push(url_key, "required when store.kind = \"redis\"")
                    }
                    Some(url) => {
                        if let Err(why) = check_redis_url(url) {
                            problems.push(url_key, why);
                        }
                    }
                }
                if self.redis.timeout.is_zero() || self.redis.timeout > Duration::from_secs(60) {
                    problems.push(
                        format!("{key}.redis.timeout"),
                        "must be between 1ms and 60s",
                    );
                }
            }
            StoreKind::DynamoDb => {
                let d = &self.dynamodb;
                for (name, table) in [
                    ("sessions_table", &d.sessions_table),
                    ("revocation_table", &d.revocation_table),
                ] {
                    if !valid_table_name(table) {
                        problems.push(
                            format!("{key}.dynamodb.{name}"),
                            "must be 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'",
                        );
                    }
                }
                if d.sessions_table == d.revocation_table {
                    problems.push(
                        format!("{key}.dynamodb.revocation_table"),
                        "must differ from sessions_table",
                    );
                }
                if let Some(url) = &d.endpoint_url
                    && !matches!(url.scheme(), "http" | "https")
                {
                    problems.push(
                        format!("{key}.dynamodb.endpoint_url"),
                        "must be an http:// or https:// URL",
                    );
                }
                if let Some(region) = &d.region
                    && (region.is_empty()
                        || !region
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-'))
                {
                    problems.push(format!("{key}.dynamodb.region"), "must look like us-east-1");
                }
                if d.timeout.is_zero() || d.timeout > Duration::from_secs(60) {
                    problems.push(
                        format!("{key}.dynamodb.timeout"),
                        "must be between 1ms and 60s",
                    );
                }
            }
        }
    }
}

/// Why a Redis URL is unusable; the message never repeats the URL (it may
/// hold a password).
fn check_redis_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !REDIS_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "scheme must be one of {}",
            REDIS_SCHEMES.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    // The client's own parser has the last word (cluster node lists, sentinel
    // options); its message is about the URL's shape, never its secrets.
    if session_bridge_redis::fred::types::config::Config::from_url(raw).is_err() {
        return Err("not a URL the Redis client accepts (see fred's URL syntax)".to_owned());
    }
    if url.scheme().ends_with("-sentinel")
        && !url.query_pairs().any(|(k, _)| k == "sentinelServiceName")
    {
        return Err("a sentinel URL needs ?sentinelServiceName=<master name>".to_owned());
    }
    Ok(())
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A URL with its password replaced, for logs.
pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("REDACTED"));
            }
            url.to_string()
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}
