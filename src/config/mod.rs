//! Configuration: a TOML file plus environment overrides.
//!
//! Sources, later ones winning:
//!
//! 1. built-in defaults (a development setup: embedded store in `./.data`);
//! 2. the TOML file given with `--config` (it must exist when given);
//! 3. environment variables `SESSION_BRIDGE__<KEY>`, nested keys joined by
//!    `__` (`SESSION_BRIDGE__STORE__KIND=redis`,
//!    `SESSION_BRIDGE__STORE__REDIS__URL=redis://…`);
//! 4. command-line flags (`--listen`, `--public-url`, `--data-dir`).
//!
//! Unknown keys are errors, and every invalid setting is reported with its
//! dotted key before the service listens.

mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;

use crate::bridge::config::{CookieConfig, CsrfConfig, PolicyConfig, SessionConfig};
use crate::login::config::LoginConfig;
use crate::service::{ForwardAuthConfig, ProxyConfig};
use crate::tokens::config::TokensConfig;
use crate::users::UsersConfig;

pub use crate::problems::{Problem, Problems};
pub use store::{
    DynamoDbStoreConfig, EmbeddedStoreConfig, RedisStoreConfig, StoreConfig, StoreKind,
};

/// Prefix of environment variables that override the file.
pub const ENV_PREFIX: &str = "SESSION_BRIDGE__";

/// The whole configuration of `session-bridge serve` and the CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL of this service (`iss` of minted tokens, base of
    /// `jwks_uri`). Defaults to `http://<listen>`.
    pub public_url: Option<url::Url>,
    /// Directory for local state: the embedded store, generated keys.
    pub data_dir: PathBuf,
    /// How long to wait for in-flight requests on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Logging.
    pub log: LogConfig,
    /// Where sessions and revocation state live.
    pub store: StoreConfig,
    /// Signing keys, token lifetimes, trusted issuers.
    pub tokens: TokensConfig,
    /// Session lifetimes.
    pub session: SessionConfig,
    /// Cookie names and attributes.
    pub cookies: CookieConfig,
    /// CSRF rules.
    pub csrf: CsrfConfig,
    /// Route policy.
    pub policy: PolicyConfig,
    /// Password logins.
    pub login: LoginConfig,
    /// The local revocation replica.
    pub revocation: crate::bridge::replica::ReplicaConfig,
    /// The built-in users file.
    pub users: UsersConfig,
    /// The forward-auth endpoint and what upstreams are told.
    pub forward_auth: ForwardAuthConfig,
    /// The optional reverse proxy.
    pub proxy: ProxyConfig,
    /// The demo pages.
    pub demo: DemoConfig,
    /// The legacy PHP app's sessions (`None`: not shared).
    pub legacy_php: Option<crate::legacy::LegacyPhpConfig>,
    /// Connection timeouts and limits.
    pub server: crate::service::ServerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from(".data"),
            shutdown_timeout: Duration::from_secs(30),
            log: LogConfig::default(),
            store: StoreConfig::default(),
            tokens: TokensConfig::default(),
            session: SessionConfig::default(),
            cookies: CookieConfig::default(),
            csrf: CsrfConfig::default(),
            policy: PolicyConfig::default(),
            login: LoginConfig::default(),
            revocation: crate::bridge::replica::ReplicaConfig::default(),
            users: UsersConfig::default(),
            forward_auth: ForwardAuthConfig::default(),
            proxy: ProxyConfig::default(),
            demo: DemoConfig::default(),
            legacy_php: None,
            server: crate::service::ServerConfig::default(),
        }
    }
}

/// `[demo]`: the demo pages (`/demo`): a legacy page on the session, an API
/// page on the token cookie, an expiry banner.
///
/// ```toml
/// [demo]
/// enabled = true          # default: on in the development setup, off otherwise
/// warn_before = "1m"      # show the "about to end" banner this long before
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DemoConfig {
    /// Serve the demo pages. Default (unset): on in the development setup
    /// ([`Config::is_development`]), off otherwise.
    pub enabled: Option<bool>,
    /// The pages warn this long before the session ends (default 1 minute).
    #[serde(with = "humantime_serde")]
    pub warn_before: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            warn_before: Duration::from_secs(60),
        }
    }
}

/// `[log]`: logging output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogConfig {
    /// `text` (human-readable, the default) or `json`.
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `session_bridge=debug,info`.
    /// `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Overrides given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--public-url`.
    pub public_url: Option<url::Url>,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--config` names a file that does not exist or cannot be read.
    #[error("cannot read config file {path}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The sources could not be merged into a configuration (bad TOML,
    /// unknown key, wrong type).
    #[error("invalid configuration:\n{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Load from defaults, the optional file, the environment and `overrides`,
    /// then validate.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_from_env(file, overrides, Env::prefixed(ENV_PREFIX).split("__"))
    }

    fn load_from_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: Env,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // figment silently skips a missing file; a typo in --config must not
            // start the service on defaults.
            std::fs::metadata(path).map_err(|source| ConfigError::Unreadable {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env);
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(url) = &overrides.public_url {
            figment = figment.merge(Serialized::default("public_url", url.as_str()));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(figment_problems(e)))?;
        let mut problems = Problems::default();
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems.into_vec()))
        }
    }

    /// Check every setting, recording each problem with its key.
    pub fn validate(&self, problems: &mut Problems) {
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                problems.push("public_url", "must be an http:// or https:// URL");
            }
            if url.query().is_some() || url.fragment().is_some() {
                problems.push("public_url", "must not have a query or fragment");
            }
            if url.host_str().is_none() {
                problems.push("public_url", "must name a host");
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir", "must not be empty");
        }
        if self.shutdown_timeout > Duration::from_secs(600) {
            problems.push("shutdown_timeout", "must be at most 10 minutes");
        }
        self.store.validate("store", problems);
        self.tokens.validate("tokens", problems);
        self.session.validate("session", problems);
        self.cookies.validate("cookies", problems);
        self.csrf.validate("csrf", problems);
        self.policy.validate("policy", problems);
        self.login.validate("login", &self.tokens.trust, problems);
        self.revocation.validate("revocation", problems);
        self.users.validate("users", problems);
        self.forward_auth.validate("forward_auth", problems);
        self.proxy.validate("proxy", problems);
        self.server.validate("server", problems);
        if let Some(php) = &self.legacy_php {
            php.validate("legacy_php", self, problems);
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600))
            .contains(&self.demo.warn_before)
        {
            problems.push("demo.warn_before", "must be between 1 second and 24 hours");
        }
    }

    /// Whether the demo pages are served: as configured, else in the
    /// development setup only.
    pub fn demo_enabled(&self) -> bool {
        self.demo.enabled.unwrap_or_else(|| self.is_development())
    }

    /// Whether this is the development setup: local store and keys generated
    /// into the data directory. Logged as a warning at start.
    pub fn is_development(&self) -> bool {
        matches!(self.store.kind, StoreKind::Embedded | StoreKind::Memory)
            && self.tokens.keys_file.is_none()
            && std::env::var_os("SESSION_BRIDGE_KEYS_FILE").is_none()
    }

    /// Whether this is a developer's own machine: the embedded store, served
    /// over plain http to a loopback address (`issuer`, the public URL
    /// actually served). Only here is the `dev` user created.
    pub fn is_local_development(&self, issuer: &str) -> bool {
        let loopback = url::Url::parse(issuer).is_ok_and(|url| {
            url.scheme() == "http"
                && match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                    None => false,
                }
        });
        self.store.kind == StoreKind::Embedded && loopback
    }

    /// Whether cookies are `Secure`: as configured, else on for an https
    /// public URL.
    pub fn secure_cookies(&self) -> bool {
        self.cookies.secure.unwrap_or_else(|| {
            self.public_url
                .as_ref()
                .is_some_and(|u| u.scheme() == "https")
        })
    }

    /// The public base URL without a trailing slash (`iss` of our tokens).
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Turn figment's errors into problems with dotted keys.
fn figment_problems(error: figment::Error) -> Vec<Problem> {
    error
        .into_iter()
        .map(|e| {
            let mut key = e.path.join(".");
            let mut with_field = |field: &str| {
                if e.path.last().map(String::as_str) != Some(field) {
                    key = if key.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{key}.{field}")
                    };
                }
            };
            let message = match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    with_field(field);
                    if expected.is_empty() {
                        "unknown key".to_owned()
                    } else {
                        format!("unknown key (expected one of: {})", expected.join(", "))
                    }
                }
                figment::error::Kind::MissingField(field) => {
                    with_field(field);
                    "required".to_owned()
                }
                figment::error::Kind::UnknownVariant(found, expected) => {
                    format!(
                        "unknown value `{found}` (expected one of: {})",
                        expected.join(", ")
                    )
                }
                kind => kind.to_string(),
            };
            let source = e.metadata.as_ref().map(|md| match &md.source {
                Some(source) => format!(" (from {} {source})", md.name),
                None => format!(" (from {})", md.name),
            });
            if key.is_empty() {
                key = "<file>".to_owned();
            }
            Problem {
                key,
                message: format!("{message}{}", source.unwrap_or_default()),
            }
        })
        .collect()
}
