//! `[legacy_php]`: where the PHP app keeps its sessions and how the bridge
//! reads and writes them.
//!
//! ```toml
//! [legacy_php]
//! store = "redis"                    # or "dynamodb"
//! format = "php"                     # session.serialize_handler: php | php_binary | php_serialize
//! cookie_name = "PHPSESSID"          # session.name
//! key_prefix = "PHPREDIS_SESSION:"   # phpredis's prefix (redis only)
//! gc_maxlifetime = 1440              # session.gc_maxlifetime, seconds (or "24m")
//! locking = false                    # redis.session.locking_enabled / aws-sdk-php 'locking'
//! identity_key = "bridge"            # $_SESSION['bridge'] holds the bridge's identity
//! accept_php_logins = true           # accept logins the PHP app records (login_mapping)
//!
//! [legacy_php.login_mapping]
//! sub_key = "user_id"                # $_SESSION['user_id'] is the user's sub
//! username_key = "username"          # optional
//! groups_key = "roles"               # optional
//! auth_time_key = "login_time"       # optional: makes "log out everywhere" exact
//! issuer = "php"
//!
//! [legacy_php.redis]
//! url = "redis://php-sessions:6379"  # default: [store.redis].url when store.kind = "redis"
//!
//! [legacy_php.dynamodb]
//! table = "sessions"                 # aws-sdk-php's table_name
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use session_bridge_php::{
    DEFAULT_GC_MAXLIFETIME, DEFAULT_IDENTITY_KEY, DEFAULT_REDIS_PREFIX, DataType, DynamoLayout,
    Format, LoginMapping,
};

use crate::config::{Config, Problems, StoreKind};

/// `[legacy_php]`: the PHP app's session records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LegacyPhpConfig {
    /// Which store PHP's session handler uses: `redis` (phpredis, the
    /// default) or `dynamodb` (aws-sdk-php's `SessionHandler`).
    pub store: LegacyStoreKind,
    /// PHP's `session.serialize_handler` (default `php`).
    pub format: PhpFormat,
    /// PHP's `session.name`: the session cookie (default `PHPSESSID`). Also
    /// the item prefix of aws-sdk-php's DynamoDB ids (`PHPSESSID_<id>`).
    pub cookie_name: String,
    /// phpredis's key prefix (default `PHPREDIS_SESSION:`).
    pub key_prefix: String,
    /// PHP's `session.gc_maxlifetime`: lifetime of a record after its last
    /// write (default 1440 s). Integer seconds as in `php.ini`, or a
    /// duration such as `"24m"`.
    #[serde(deserialize_with = "seconds_or_duration")]
    pub gc_maxlifetime: Duration,
    /// Take PHP's session lock before writing, as PHP does when the app
    /// enables locking. Every writer of the records must agree.
    pub locking: bool,
    /// Session key under which the bridge writes its identity (default
    /// `bridge`: `$_SESSION['bridge']`).
    pub identity_key: String,
    /// Accept a login the PHP app recorded (read through `login_mapping`)
    /// when no bridge credential is presented (default true).
    pub accept_php_logins: bool,
    /// How a PHP-side login reads in `$_SESSION`.
    pub login_mapping: LoginMappingConfig,
    /// `[legacy_php.redis]`.
    pub redis: LegacyRedisConfig,
    /// `[legacy_php.dynamodb]`.
    pub dynamodb: LegacyDynamoDbConfig,
}

impl Default for LegacyPhpConfig {
    fn default() -> Self {
        Self {
            store: LegacyStoreKind::Redis,
            format: PhpFormat::Php,
            cookie_name: "PHPSESSID".to_owned(),
            key_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            gc_maxlifetime: DEFAULT_GC_MAXLIFETIME,
            locking: false,
            identity_key: DEFAULT_IDENTITY_KEY.to_owned(),
            accept_php_logins: true,
            login_mapping: LoginMappingConfig::default(),
            redis: LegacyRedisConfig::default(),
            dynamodb: LegacyDynamoDbConfig::default(),
        }
    }
}

/// Where PHP keeps its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegacyStoreKind {
    /// phpredis's session handler (`session.save_handler = redis`).
    Redis,
    /// aws-sdk-php's DynamoDB `SessionHandler`.
    DynamoDb,
}

/// PHP's `session.serialize_handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhpFormat {
    /// `php` (PHP's default).
    Php,
    /// `php_binary`.
    PhpBinary,
    /// `php_serialize`.
    PhpSerialize,
}

impl From<PhpFormat> for Format {
    fn from(f: PhpFormat) -> Self {
        match f {
            PhpFormat::Php => Format::Php,
            PhpFormat::PhpBinary => Format::PhpBinary,
            PhpFormat::PhpSerialize => Format::PhpSerialize,
        }
    }
}

/// `[legacy_php.login_mapping]`: which `$_SESSION` keys record a PHP-side
/// login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoginMappingConfig {
    /// Key of the user id, used as `sub` (default `user_id`).
    pub sub_key: String,
    /// Key of the login name, if the app keeps one.
    pub username_key: Option<String>,
    /// Key of the groups (a list, or one string), if the app keeps them.
    pub groups_key: Option<String>,
    /// Key of the login time (Unix seconds), if the app keeps it. Without
    /// it, a PHP login counts from when the bridge first sees it.
    pub auth_time_key: Option<String>,
    /// Issuer reported for such logins (default `php`).
    pub issuer: String,
}

impl Default for LoginMappingConfig {
    fn default() -> Self {
        let d = LoginMapping::default();
        Self {
            sub_key: d.sub_key,
            username_key: d.username_key,
            groups_key: d.groups_key,
            auth_time_key: d.auth_time_key,
            issuer: d.issuer,
        }
    }
}

impl From<&LoginMappingConfig> for LoginMapping {
    fn from(c: &LoginMappingConfig) -> Self {
        LoginMapping {
            sub_key: c.sub_key.clone(),
            username_key: c.username_key.clone(),
            groups_key: c.groups_key.clone(),
            auth_time_key: c.auth_time_key.clone(),
            issuer: c.issuer.clone(),
        }
    }
}

/// `[legacy_php.redis]`: the Redis PHP's sessions live on.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LegacyRedisConfig {
    /// Redis URL (same syntax as `[store.redis].url`). Default: the main
    /// store's URL when `store.kind = "redis"`. May hold a password: never
    /// logged.
    pub url: Option<String>,
    /// Per-command timeout (default 2 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for LegacyRedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for LegacyRedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyRedisConfig")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[legacy_php.dynamodb]`: aws-sdk-php's `SessionHandler` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LegacyDynamoDbConfig {
    /// `table_name` (default `sessions`).
    pub table: String,
    /// AWS region; default `[store.dynamodb].region`, else the AWS chain.
    pub region: Option<String>,
    /// Endpoint override; default `[store.dynamodb].endpoint_url`.
    pub endpoint_url: Option<url::Url>,
    /// `hash_key` (default `id`).
    pub hash_key: String,
    /// `data_attribute` (default `data`).
    pub data_attribute: String,
    /// `data_attribute_type`: `string` (default) or `binary`.
    pub data_type: LegacyDataType,
    /// `session_lifetime_attribute` (default `expires`).
    pub expires_attribute: String,
    /// Per-attempt timeout (default 2 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for LegacyDynamoDbConfig {
    fn default() -> Self {
        let d = DynamoLayout::default();
        Self {
            table: d.table,
            region: None,
            endpoint_url: None,
            hash_key: d.hash_key,
            data_attribute: d.data_attribute,
            data_type: LegacyDataType::String,
            expires_attribute: d.expires_attribute,
            timeout: Duration::from_secs(2),
        }
    }
}

/// aws-sdk-php's `data_attribute_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegacyDataType {
    /// `S`.
    String,
    /// `B`.
    Binary,
}

impl From<LegacyDataType> for DataType {
    fn from(t: LegacyDataType) -> Self {
        match t {
            LegacyDataType::String => DataType::String,
            LegacyDataType::Binary => DataType::Binary,
        }
    }
}

impl LegacyPhpConfig {
    /// The Redis URL to use: ours, else the main store's when it is Redis.
    pub fn redis_url<'a>(&'a self, config: &'a Config) -> Option<&'a str> {
        match self.redis.url.as_deref() {
            Some(url) => Some(url),
            None if config.store.kind == StoreKind::Redis => config.store.redis.url.as_deref(),
            None => None,
        }
        .filter(|u| !u.is_empty())
    }

    /// The DynamoDB layout aws-sdk-php uses with these settings.
    pub fn dynamo_layout(&self) -> DynamoLayout {
        let d = &self.dynamodb;
        DynamoLayout {
            table: d.table.clone(),
            session_name: self.cookie_name.clone(),
            hash_key: d.hash_key.clone(),
            data_attribute: d.data_attribute.clone(),
            data_type: d.data_type.into(),
            expires_attribute: d.expires_attribute.clone(),
            lifetime: self.gc_maxlifetime,
        }
    }

    /// Record problems under `key` (`legacy_php`); `config` is the whole
    /// configuration (the main store, the bridge's cookie names).
    pub fn validate(&self, key: &str, config: &Config, problems: &mut Problems) {
        let name = &self.cookie_name;
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && name.bytes().any(|b| b.is_ascii_alphabetic());
        if !name_ok {
            problems.push(
                format!("{key}.cookie_name"),
                "must be 1-64 letters, digits, '_' or '-', with at least one letter (PHP's session.name)",
            );
        }
        let c = &config.cookies;
        if [&c.session_name, &c.token_name, &c.csrf_name].contains(&name) {
            problems.push(
                format!("{key}.cookie_name"),
                "must differ from the bridge's own cookie names ([cookies])",
            );
        }
        if self.key_prefix.len() > 256 || !self.key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(
                format!("{key}.key_prefix"),
                "must be at most 256 printable ASCII characters without spaces",
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(365 * 24 * 3600))
            .contains(&self.gc_maxlifetime)
        {
            problems.push(
                format!("{key}.gc_maxlifetime"),
                "must be between 1 second and 365 days",
            );
        }
        let m = &self.login_mapping;
        let keys = [
            ("identity_key", Some(&self.identity_key)),
            ("login_mapping.sub_key", Some(&m.sub_key)),
            ("login_mapping.username_key", m.username_key.as_ref()),
            ("login_mapping.groups_key", m.groups_key.as_ref()),
            ("login_mapping.auth_time_key", m.auth_time_key.as_ref()),
        ];
        for (field, value) in keys {
            if let Some(v) = value
                && !session_key_ok(v)
            {
                problems.push(
                    format!("{key}.{field}"),
                    "must be 1-127 bytes without '|' or '!' (PHP's session formats cannot hold it)",
                );
            }
        }
        for (field, value) in &keys[1..] {
            if *value == Some(&self.identity_key) {
                problems.push(
                    format!("{key}.{field}"),
                    "must differ from identity_key (the bridge writes that key)",
                );
            }
        }
        if m.issuer.is_empty() {
            problems.push(format!("{key}.login_mapping.issuer"), "must not be empty");
        }
        match self.store {
            LegacyStoreKind::Redis => self.validate_redis(key, config, problems),
            LegacyStoreKind::DynamoDb => self.validate_dynamodb(key, problems),
        }
    }

    fn validate_redis(&self, key: &str, config: &Config, problems: &mut Problems) {
        let url_key = format!("{key}.redis.url");
        match self.redis_url(config) {
            None => problems.push(
                url_key,
                "required when legacy_php.store = \"redis\" and store.kind is not \"redis\"",
            ),
            Some(url) => {
                let scheme_ok = url::Url::parse(url)
                    .is_ok_and(|u| u.scheme().starts_with("redis") && u.host_str().is_some());
                let client_ok =
                    session_bridge_php::fred::types::config::Config::from_url(url).is_ok();
                if !scheme_ok || !client_ok {
                    // Never repeat the URL: it may hold a password.
                    problems.push(
                        url_key,
                        "not a Redis URL the client accepts (redis://, rediss://, redis-cluster://, redis-sentinel://)",
                    );
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

    fn validate_dynamodb(&self, key: &str, problems: &mut Problems) {
        let d = &self.dynamodb;
        let table_ok = (3..=255).contains(&d.table.len())
            && d.table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !table_ok {
            problems.push(
                format!("{key}.dynamodb.table"),
                "must be 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'",
            );
        }
        for (field, value) in [
            ("hash_key", &d.hash_key),
            ("data_attribute", &d.data_attribute),
            ("expires_attribute", &d.expires_attribute),
        ] {
            if value.is_empty() || value.len() > 255 || value == "lock" {
                problems.push(
                    format!("{key}.dynamodb.{field}"),
                    "must be 1-255 bytes and not `lock` (aws-sdk-php's lock attribute)",
                );
            }
        }
        if d.hash_key == d.data_attribute
            || d.hash_key == d.expires_attribute
            || d.data_attribute == d.expires_attribute
        {
            problems.push(
                format!("{key}.dynamodb.data_attribute"),
                "attribute names must differ",
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
        if let Some(url) = &d.endpoint_url
            && !matches!(url.scheme(), "http" | "https")
        {
            problems.push(
                format!("{key}.dynamodb.endpoint_url"),
                "must be an http:// or https:// URL",
            );
        }
        if d.timeout.is_zero() || d.timeout > Duration::from_secs(60) {
            problems.push(
                format!("{key}.dynamodb.timeout"),
                "must be between 1ms and 60s",
            );
        }
    }
}

/// A key every PHP session format can hold: `php` stops keys at `|`,
/// `php_binary` caps them at 127 bytes, and PHP treats `!` as a marker
/// in both.
fn session_key_ok(key: &str) -> bool {
    (1..=127).contains(&key.len()) && !key.contains(['|', '!'])
}

/// `1440` (seconds, as in `php.ini`) or `"24m"` (a humantime duration).
fn seconds_or_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds or a duration such as \"24m\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom("must not be negative"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            match v.trim().parse::<u64>() {
                Ok(secs) => Ok(Duration::from_secs(secs)),
                Err(_) => humantime::parse_duration(v).map_err(E::custom),
            }
        }
    }
    d.deserialize_any(Visitor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn load(toml: &str) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), &Overrides::default()).map_err(|e| match e {
            crate::config::ConfigError::Invalid(p) => {
                p.into_iter().map(|p| p.to_string()).collect()
            }
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn defaults_are_phps() {
        let c = load("[store]\nkind = \"redis\"\n[store.redis]\nurl = \"redis://127.0.0.1:1\"\n[legacy_php]\n").unwrap();
        let php = c.legacy_php.clone().unwrap();
        assert_eq!(php.store, LegacyStoreKind::Redis);
        assert_eq!(php.format, PhpFormat::Php);
        assert_eq!(php.cookie_name, "PHPSESSID");
        assert_eq!(php.key_prefix, "PHPREDIS_SESSION:");
        assert_eq!(php.gc_maxlifetime, Duration::from_secs(1440));
        assert_eq!(php.identity_key, "bridge");
        assert_eq!(php.login_mapping.sub_key, "user_id");
        assert!(php.accept_php_logins && !php.locking);
        assert_eq!(php.redis_url(&c), Some("redis://127.0.0.1:1"));
        assert_eq!(php.dynamo_layout().session_name, "PHPSESSID");
    }

    #[test]
    fn gc_maxlifetime_takes_seconds_or_a_duration() {
        for (value, secs) in [("3600", 3600), ("\"3600\"", 3600), ("\"2h\"", 7200)] {
            let c = load(&format!(
                "[legacy_php]\nstore = \"dynamodb\"\ngc_maxlifetime = {value}\n"
            ))
            .unwrap();
            assert_eq!(
                c.legacy_php.unwrap().gc_maxlifetime,
                Duration::from_secs(secs)
            );
        }
    }

    #[test]
    fn problems_name_dotted_keys() {
        let problems = load(
            r#"
[legacy_php]
store = "redis"
cookie_name = "sb_session"
key_prefix = "has space"
gc_maxlifetime = 0
identity_key = "a|b"
[legacy_php.login_mapping]
sub_key = "a|b"
issuer = ""
"#,
        )
        .unwrap_err()
        .join("\n");
        for key in [
            "legacy_php.cookie_name",
            "legacy_php.key_prefix",
            "legacy_php.gc_maxlifetime",
            "legacy_php.identity_key",
            "legacy_php.login_mapping.sub_key",
            "legacy_php.login_mapping.issuer",
            "legacy_php.redis.url",
        ] {
            assert!(
                problems.contains(&format!("`{key}`")),
                "{key} in {problems}"
            );
        }
        let problems = load("[legacy_php]\nformat = \"igbinary\"\n")
            .unwrap_err()
            .join("\n");
        assert!(problems.contains("`legacy_php.format`"), "{problems}");
        assert!(problems.contains("php_serialize"), "{problems}");
        let problems = load(
            "[legacy_php]\nstore = \"dynamodb\"\n[legacy_php.dynamodb]\ntable = \"x\"\nhash_key = \"lock\"\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(
            problems.contains("`legacy_php.dynamodb.table`"),
            "{problems}"
        );
        assert!(
            problems.contains("`legacy_php.dynamodb.hash_key`"),
            "{problems}"
        );
    }

    #[test]
    fn a_redis_url_is_never_repeated() {
        let problems =
            load("[legacy_php]\n[legacy_php.redis]\nurl = \"http://user:s3cret@host\"\n")
                .unwrap_err()
                .join("\n");
        assert!(problems.contains("`legacy_php.redis.url`"), "{problems}");
        assert!(!problems.contains("s3cret"), "{problems}");
    }
}
